// vizlab prompt box (anywidget ESM, shipped inside the package). Enter sends, Shift+Enter is a
// newline (as in the Azure AI Foundry playground); an IME composition's Enter never sends.

function render({ model, el }) {
  const area = document.createElement("textarea");
  area.className = "vizlab-prompt-area";
  area.rows = 3;
  el.appendChild(area);
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
}

export default { render };
