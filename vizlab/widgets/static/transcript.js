// vizlab chat transcript (anywidget ESM, shipped inside the package; nothing is fetched).
// Rows come from Python already rendered and sanitised (vizlab.widgets.markdown); this file only
// lays them out in a scrolling box, keeps the newest row in view, runs the copy buttons and the
// spinner's elapsed-seconds counter. Rows never shrink: the box is a block, not a flex column.

function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    return navigator.clipboard.writeText(text);
  }
  const area = document.createElement("textarea");
  area.value = text;
  area.style.position = "fixed";
  area.style.opacity = "0";
  document.body.appendChild(area);
  area.select();
  try { document.execCommand("copy"); } finally { area.remove(); }
  return Promise.resolve();
}

function thumbs(urls) {
  const box = document.createElement("div");
  box.className = "vizlab-chat-thumbs";
  for (const url of urls || []) {
    if (typeof url !== "string" || !url.startsWith("data:image/")) continue; // own bytes only
    const img = document.createElement("img");
    img.src = url;
    img.className = "vizlab-thumbnail";
    img.alt = "attached image";
    box.appendChild(img);
  }
  return box;
}

// "Edit" (your messages) and "Delete" buttons on each row, when the panel handles them: the
// kernel picks the message in the editing row (cost shown before anything is resent).
function actionButton(model, row, action, text) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = `vizlab-chat-copy vizlab-chat-${action}-turn`;
  button.textContent = text;
  button.setAttribute("aria-label", `${text} message ${row.n}`);
  button.title = `${text} message ${row.n}`;
  button.addEventListener("click", () => model.send({ event: action, n: row.n }));
  return button;
}

function rowNode(row, pending, model) {
  const node = document.createElement("div");
  node.className = `vizlab-chat-turn vizlab-chat-turn-${row.role}` + (pending ? " vizlab-chat-pending" : "");
  if (row.thumbs && row.thumbs.length) node.appendChild(thumbs(row.thumbs));
  const bubble = document.createElement("div");
  bubble.className = `vizlab-chat-bubble vizlab-chat-${row.role}`;
  const head = document.createElement("div");
  head.className = "vizlab-chat-who";
  head.textContent = row.role === "user" ? "You" : "Assistant";
  if (row.copy) {
    const button = document.createElement("button");
    button.className = "vizlab-chat-copy";
    button.type = "button";
    button.textContent = "Copy";
    const name = row.n ? `Copy answer, message ${row.n}` : "Copy answer";
    button.setAttribute("aria-label", name);
    button.title = `${name} (Markdown) to the clipboard`;
    button.addEventListener("click", () => {
      copyText(row.copy).then(
        () => { button.textContent = "Copied"; setTimeout(() => { button.textContent = "Copy"; }, 1500); },
        () => { button.textContent = "Copy failed"; },
      );
    });
    head.appendChild(button);
  }
  if (!pending && row.n && model && model.get("actions")) {
    const tools = document.createElement("span");
    tools.className = "vizlab-chat-tools";
    if (row.role === "user") tools.appendChild(actionButton(model, row, "edit", "Edit"));
    tools.appendChild(actionButton(model, row, "delete", "Delete"));
    head.appendChild(tools);
  }
  bubble.appendChild(head);
  const body = document.createElement("div");
  body.className = "vizlab-chat-body";
  body.innerHTML = row.html; // sanitised in Python: no script, no on* handler, no remote src
  bubble.appendChild(body);
  if (row.stats || (row.warnings && row.warnings.length)) {
    const stats = document.createElement("div");
    stats.className = "vizlab-chat-stats";
    stats.textContent = row.stats || "";
    for (const w of row.warnings || []) {
      const warn = document.createElement("div");
      warn.className = "vizlab-chat-warning";
      warn.textContent = "⚠️ " + w;
      stats.appendChild(warn);
    }
    bubble.appendChild(stats);
  }
  node.appendChild(bubble);
  return node;
}

function render({ model, el }) {
  el.classList.add("vizlab-chat-transcript-root");
  const scroller = document.createElement("div");
  scroller.className = "vizlab-chat-scroll";
  el.appendChild(scroller);
  let timer = null;
  let pendingSince = null;
  let shownRows = -1;

  function nearBottom() {
    return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 40;
  }

  function draw() {
    const rows = model.get("rows") || [];
    const pending = model.get("pending") || {};
    const stick = nearBottom() || rows.length !== shownRows || Object.keys(pending).length > 0;
    scroller.style.maxHeight = model.get("max_height") || "420px";
    scroller.replaceChildren();
    if (!rows.length && !pending.role) {
      const empty = document.createElement("div");
      empty.className = "vizlab-chat-empty";
      empty.textContent = model.get("empty_text") || "";
      scroller.appendChild(empty);
    }
    for (const row of rows) scroller.appendChild(rowNode(row, false, model));
    if (timer) { clearInterval(timer); timer = null; }
    if (pending.role) {
      scroller.appendChild(rowNode(pending, true));
      const answer = { role: "assistant", html: pending.answer_html || "", stats: "" };
      const node = rowNode(answer, true);
      if (!pending.answer_html) {
        if (pendingSince === null) pendingSince = Date.now();
        const spin = document.createElement("div");
        spin.className = "vizlab-chat-spinner";
        const tick = () => {
          spin.textContent = `⏳ waiting for the first token… ${((Date.now() - pendingSince) / 1000).toFixed(1)} s`;
        };
        tick();
        timer = setInterval(tick, 100);
        node.querySelector(".vizlab-chat-body").appendChild(spin);
      }
      scroller.appendChild(node);
    } else {
      pendingSince = null;
    }
    shownRows = rows.length;
    if (stick) scroller.scrollTop = scroller.scrollHeight;
    // Thumbnails load after layout: keep the newest row in view once they have a size.
    for (const img of scroller.querySelectorAll("img")) {
      if (!img.complete) img.addEventListener("load", () => { if (stick) scroller.scrollTop = scroller.scrollHeight; }, { once: true });
    }
  }

  model.on("change:rows", draw);
  model.on("change:pending", draw);
  model.on("change:max_height", draw);
  model.on("change:actions", draw);
  draw();
  return () => { if (timer) clearInterval(timer); };
}

export default { render };
