// vizlab accessible names (anywidget ESM, shipped inside the package). ipywidgets' sliders are
// div[role=slider] handles that their description label does not name; this gives each control
// in the panel an aria-label from Python ([class, name] pairs), again whenever the panel redraws.
function render({ model, el }) {
  el.style.display = "none";
  const apply = () => {
    const root = el.closest(".vizlab-chat, .vizlab-upload, .vizlab-compare, .vizlab-compare-chat") || document;
    for (const [cls, name] of model.get("names") || []) {
      for (const node of root.querySelectorAll(`.${cls} [role=slider], .${cls} input, .${cls} select, .${cls} textarea`)) {
        if (node.getAttribute("aria-label") !== name) node.setAttribute("aria-label", name);
      }
    }
  };
  // The panel's other controls render after this one: apply now, then on every change.
  requestAnimationFrame(apply);
  const root = el.closest(".vizlab-chat, .vizlab-upload, .vizlab-compare, .vizlab-compare-chat");
  let observer = null;
  if (root) {
    observer = new MutationObserver(apply);
    observer.observe(root, { childList: true, subtree: true });
  }
  model.on("change:names", apply);
  return () => { if (observer) observer.disconnect(); };
}
export default { render };
