// vizlab drop zone (anywidget ESM; files.js is prepended). Drop images here, or focus it (Tab or
// click) and paste with Ctrl/Cmd+V; Enter or Space opens the file chooser. Files go to the
// kernel in acknowledged chunks, with a progress bar for big ones; refusals are said here.
function render({ model, el }) {
  const zone = document.createElement("div");
  zone.className = "vizlab-dropzone";
  zone.tabIndex = 0;
  zone.setAttribute("role", "button");
  zone.setAttribute("aria-label", model.get("label") || "Drop or paste images here, or press Enter to choose files");
  zone.textContent = model.get("label") || "Drop or paste images here, or press Enter to choose files";
  const chooser = document.createElement("input");
  chooser.type = "file";
  chooser.multiple = true;
  chooser.accept = "image/*,application/pdf";
  chooser.style.display = "none";
  const status = document.createElement("div");
  status.className = "vizlab-drop-status";
  status.style.display = "none";
  status.setAttribute("aria-live", "polite");
  el.append(zone, chooser, status);
  const intake = vizlabIntake(model, status);
  zone.addEventListener("click", () => chooser.click());
  zone.addEventListener("keydown", (event) => {
    event.stopPropagation(); // keys here are for the zone, not JupyterLab commands
    if (event.key === "Enter" || event.key === " ") { event.preventDefault(); chooser.click(); }
  });
  chooser.addEventListener("change", () => { void intake(chooser.files).then(() => { chooser.value = ""; }); });
  zone.addEventListener("paste", (event) => {
    const files = vizlabFilesOf(event.clipboardData);
    if (!files.length) return;
    event.preventDefault();
    void intake(files);
  });
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    event.stopPropagation();
    if (event.dataTransfer) event.dataTransfer.dropEffect = "copy";
    zone.classList.add("vizlab-drop-target");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("vizlab-drop-target"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    event.stopPropagation();
    zone.classList.remove("vizlab-drop-target");
    void intake(vizlabFilesOf(event.dataTransfer));
  });
  return vizlabTakeOver(model, el, intake);
}

export default { render };
