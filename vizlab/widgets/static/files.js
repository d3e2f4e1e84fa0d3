// vizlab file intake (shared by the prompt box and the drop zone; prepended to their ESM).
// Pasted and dropped files go to the kernel in 1 MiB chunks over the widget's own messages, each
// acknowledged by the kernel, so no single websocket message is big (Jupyter drops those over
// 10 MiB silently) and the progress shown is what the kernel has received. A file over the
// limit, or of a type that cannot be attached, is refused here, before anything is sent, and the
// kernel is told so it can say it in the panel too: nothing is dropped silently.

const VIZLAB_CHUNK = 1024 * 1024;
const VIZLAB_PROGRESS_FROM = 2 * 1024 * 1024; // a progress bar for files over 2 MB

function vizlabSize(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  if (n < 1024 * 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MB`;
  return `${(n / 1024 / 1024 / 1024).toFixed(2)} GB`;
}

function vizlabAccepts(file) {
  const t = (file.type || "").toLowerCase();
  const n = (file.name || "").toLowerCase();
  return t.startsWith("image/") || t === "application/pdf" || /\.(png|jpe?g|gif|webp|bmp|tiff?|heic|pdf)$/.test(n);
}

// Files of a paste or a drop, in order; [] when it carries none (plain text goes on as text).
function vizlabFilesOf(data) {
  if (!data) return [];
  const out = [];
  if (data.items && data.items.length) {
    for (const item of data.items) {
      if (item.kind === "file") { const f = item.getAsFile(); if (f) out.push(f); }
    }
  }
  if (!out.length && data.files) for (const f of data.files) out.push(f);
  return out;
}

function vizlabIntake(model, statusEl) {
  const waiting = new Map(); // id -> resolve(received)
  model.on("msg:custom", (msg) => {
    if (msg && msg.event === "file-ack" && waiting.has(msg.id)) {
      const resolve = waiting.get(msg.id);
      waiting.delete(msg.id);
      resolve(msg);
    }
  });
  const ack = (id) => new Promise((resolve) => waiting.set(id, resolve));

  function say(text, kind) {
    statusEl.textContent = "";
    if (!text) { statusEl.style.display = "none"; return; }
    statusEl.style.display = "block";
    statusEl.className = "vizlab-drop-status" + (kind ? ` vizlab-drop-${kind}` : "");
    statusEl.setAttribute("role", kind === "error" ? "alert" : "status");
    statusEl.appendChild(document.createTextNode(text));
  }

  function refuse(file, name, reason, text) {
    model.send({ event: "file-refused", name, size: file.size, type: file.type || "", reason });
    return text;
  }

  async function sendOne(file, index, count) {
    const name = file.name || `pasted-image-${index + 1}.${(file.type.split("/")[1] || "png").replace("jpeg", "jpg")}`;
    const max = model.get("max_bytes") || 0;
    if (!vizlabAccepts(file)) {
      return refuse(file, name, "type", `${name} (${file.type || "unknown type"}) was not attached: only images (and PDFs) can be attached.`);
    }
    if (max && file.size > max) {
      return refuse(file, name, "size", `${name} is ${vizlabSize(file.size)}: over the ${vizlabSize(max)} limit, so it was not sent. ${model.get("too_big_note") || ""}`);
    }
    const id = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
    let bar = null;
    if (file.size > VIZLAB_PROGRESS_FROM) {
      say(`Sending ${name} (${vizlabSize(file.size)}) to the kernel…`, "progress");
      bar = document.createElement("progress");
      bar.max = file.size; bar.value = 0;
      bar.setAttribute("aria-label", `Upload of ${name}`);
      statusEl.appendChild(bar);
    } else {
      say(`Sending ${name}…`, "progress");
    }
    const begun = ack(id);
    model.send({ event: "file-begin", id, name, type: file.type || "", size: file.size, last_modified: file.lastModified || 0,
                 index, count });
    const first = await begun;
    if (first.error) return first.error;
    for (let offset = 0; offset < file.size; offset += VIZLAB_CHUNK) {
      const part = await file.slice(offset, offset + VIZLAB_CHUNK).arrayBuffer();
      const got = ack(id);
      model.send({ event: "file-chunk", id, offset }, undefined, [part]);
      const reply = await got;
      if (reply.error) return reply.error;
      if (bar) bar.value = reply.received;
    }
    const ended = ack(id);
    model.send({ event: "file-end", id });
    const done = await ended;
    return done.error || "";
  }

  return async function send(files) {
    const list = Array.from(files || []);
    const errors = [];
    for (let i = 0; i < list.length; i++) {
      const error = await sendOne(list[i], i, list.length);
      if (error) errors.push(error);
    }
    say(errors.join(" "), errors.length ? "error" : "");
    return errors.length === 0;
  };
}

// The panel's own Upload / Attach button is an ipywidgets FileUpload, which sends a chosen file
// in one websocket message (Jupyter drops one over 10 MiB without a word). Its click is taken
// here, before its own listener, and opens this chooser instead: the files then go in
// acknowledged chunks, with the progress bar and the refusal above. Returns the cleanup.
function vizlabTakeOver(model, el, intake) {
  const button = model.get("takes_over");
  const panel = model.get("panel");
  if (!button || !panel) return () => {};
  const chooser = document.createElement("input");
  chooser.type = "file";
  chooser.multiple = true;
  chooser.accept = "image/*,application/pdf";
  chooser.style.display = "none";
  chooser.className = "vizlab-takeover-chooser";
  el.appendChild(chooser);
  chooser.addEventListener("change", () => {
    const files = Array.from(chooser.files || []);
    chooser.value = "";
    if (files.length) void intake(files);
  });
  const onClick = (event) => {
    const host = event.target instanceof Element ? event.target.closest("." + button) : null;
    if (!host || !el.isConnected || host.closest("." + panel) !== el.closest("." + panel)) return;
    event.stopImmediatePropagation();
    event.preventDefault();
    chooser.click();
  };
  document.addEventListener("click", onClick, true);
  return () => document.removeEventListener("click", onClick, true);
}
