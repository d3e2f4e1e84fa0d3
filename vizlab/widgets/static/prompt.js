// vizlab prompt box (anywidget ESM, shipped inside the package). Enter sends, Shift+Enter is a
// newline (as in the Azure AI Foundry playground); an IME composition's Enter never sends.
// Pasting or dropping an image (or a PDF) attaches it (files.js, prepended to this file); so does
// the panel's Attach button, whose files go the same chunked way (vizlabTakeOver).

function render({ model, el }) {
  const area = document.createElement("textarea");
  area.className = "vizlab-prompt-area";
  area.rows = 3;
  area.setAttribute("aria-label", model.get("label") || "Message");
  el.appendChild(area);
  // Paste (Ctrl/Cmd+V of an image or a copied file) and drop attach files (see files.js).
  const status = document.createElement("div");
  status.className = "vizlab-drop-status";
  status.style.display = "none";
  status.setAttribute("aria-live", "polite");
  el.appendChild(status);
  const intake = vizlabIntake(model, status);
  area.addEventListener("paste", (event) => {
    const files = vizlabFilesOf(event.clipboardData);
    if (!files.length) return; // text: pasted as usual
    event.preventDefault();
    void intake(files);
  });
  area.addEventListener("dragover", (event) => {
    if (!event.dataTransfer || !Array.from(event.dataTransfer.types || []).includes("Files")) return;
    event.preventDefault();
    event.stopPropagation();
    event.dataTransfer.dropEffect = "copy";
    area.classList.add("vizlab-drop-target");
  });
  area.addEventListener("dragleave", () => area.classList.remove("vizlab-drop-target"));
  area.addEventListener("drop", (event) => {
    area.classList.remove("vizlab-drop-target");
    const files = vizlabFilesOf(event.dataTransfer);
    if (!files.length) return;
    event.preventDefault();
    event.stopPropagation();
    void intake(files);
  });
  const sync = () => {
    if (area.value !== model.get("value")) area.value = model.get("value");
    area.placeholder = model.get("placeholder") || "";
    area.disabled = !!model.get("disabled");
  };
  area.addEventListener("input", () => {
    model.set("value", area.value);
    model.save_changes();
  });
  // Keys typed here are text, not JupyterLab commands (Shift+Enter would run the cell), as in
  // ipywidgets' own text boxes.
  area.addEventListener("keypress", (event) => event.stopPropagation());
  area.addEventListener("keyup", (event) => event.stopPropagation());
  area.addEventListener("keydown", (event) => {
    event.stopPropagation();
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && !event.altKey && !event.ctrlKey && !event.metaKey) {
      event.preventDefault();
      model.set("value", area.value);
      model.save_changes();
      model.send({ event: "submit", value: area.value });
    }
  });
  model.on("change:value", sync);
  model.on("change:placeholder", sync);
  model.on("change:disabled", sync);
  sync();
  return vizlabTakeOver(model, el, intake);
}

export default { render };
