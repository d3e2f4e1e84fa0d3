// vizlab "View code" box (anywidget ESM, shipped inside the package): the code and a Copy button.
function render({ model, el }) {
  const bar = document.createElement("div");
  bar.className = "vizlab-code-bar";
  const button = document.createElement("button");
  button.type = "button";
  button.className = "vizlab-code-copy";
  button.textContent = "Copy code";
  bar.appendChild(button);
  const pre = document.createElement("pre");
  pre.className = "vizlab-code-text";
  const wrap = document.createElement("div");
  wrap.className = "vizlab-code-wrap";
  wrap.appendChild(bar);
  wrap.appendChild(pre);
  el.appendChild(wrap);
  const draw = () => {
    pre.textContent = model.get("code") || "";
    wrap.style.display = model.get("code") ? "block" : "none";
  };
  button.addEventListener("click", () => {
    const text = model.get("code") || "";
    const done = () => { button.textContent = "Copied"; setTimeout(() => { button.textContent = "Copy code"; }, 1500); };
    if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(text).then(done, () => { button.textContent = "Copy failed"; });
    else {
      const area = document.createElement("textarea");
      area.value = text; document.body.appendChild(area); area.select();
      try { document.execCommand("copy"); done(); } finally { area.remove(); }
    }
  });
  model.on("change:code", draw);
  draw();
}
export default { render };
