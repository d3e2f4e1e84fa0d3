// vizlab "what the model sees" picture (anywidget ESM, shipped inside the package): fits its
// column; a click or Enter shows it at its real pixels (scroll to pan), another fits it again.
function render({ model, el }) {
  const box = document.createElement("div");
  box.className = "vizlab-zoom-box";
  const img = document.createElement("img");
  img.className = "vizlab-zoom-img vizlab-compare-grid";
  img.alt = "the image as the model sees it";
  img.title = "Click (or press Enter) to see the real pixels; again to fit";
  img.tabIndex = 0; // reachable with Tab; Enter or Space zooms, as a click does
  img.setAttribute("role", "button");
  box.appendChild(img);
  el.appendChild(box);
  const draw = () => {
    const url = model.get("src") || "";
    if (url.startsWith("data:image/")) img.src = url; else img.removeAttribute("src");
    box.classList.toggle("vizlab-zoomed", !!model.get("zoomed"));
    img.setAttribute("aria-pressed", model.get("zoomed") ? "true" : "false");
    img.setAttribute("aria-label", model.get("zoomed") ? "The image as the model sees it, real pixels: press Enter to fit"
      : "The image as the model sees it: press Enter for its real pixels");
  };
  const toggle = () => {
    model.set("zoomed", !model.get("zoomed"));
    model.save_changes();
  };
  img.addEventListener("click", toggle);
  img.addEventListener("keydown", (event) => {
    event.stopPropagation(); // Enter here zooms; it must not run the cell
    if (event.key === "Enter" || event.key === " ") { event.preventDefault(); toggle(); }
  });
  model.on("change:src", draw);
  model.on("change:zoomed", draw);
  draw();
}
export default { render };
