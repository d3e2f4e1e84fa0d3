// vizlab "what the model sees" picture (anywidget ESM, shipped inside the package): fits its
// column; a click shows it at its real pixels (scroll to pan), another click fits it again.
function render({ model, el }) {
  const box = document.createElement("div");
  box.className = "vizlab-zoom-box";
  const img = document.createElement("img");
  img.className = "vizlab-zoom-img vizlab-compare-grid";
  img.alt = "the image as the model sees it";
  img.title = "Click to see the real pixels; click again to fit";
  box.appendChild(img);
  el.appendChild(box);
  const draw = () => {
    const url = model.get("src") || "";
    if (url.startsWith("data:image/")) img.src = url; else img.removeAttribute("src");
    box.classList.toggle("vizlab-zoomed", !!model.get("zoomed"));
  };
  img.addEventListener("click", () => {
    model.set("zoomed", !model.get("zoomed"));
    model.save_changes();
  });
  model.on("change:src", draw);
  model.on("change:zoomed", draw);
  draw();
}
export default { render };
