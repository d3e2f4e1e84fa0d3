"""The facilitator's live page at ``/room/``: plain HTML and JS (no CDN), polling ``/room/usage``.

The page holds no data itself; it asks for the admin key, keeps it in the tab's sessionStorage
(gone when the tab closes), and sends it as the ``api-key`` header. Every value is set with
``textContent``, so nothing from the store is parsed as HTML.
"""

from __future__ import annotations

__all__ = ["PAGE"]

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>vizlab room</title>
<style>
body{font-family:sans-serif;margin:1em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;
text-align:right}th{background:#eee}#status{color:#666}.revoked{color:#a00}
</style></head><body>
<h1>vizlab room</h1>
<form id="login"><label>Admin key <input id="key" type="password" autocomplete="off"></label>
<button type="submit">Show usage</button></form>
<p id="status">Enter the admin key printed when the room started.</p>
<p id="totals"></p>
<table id="usage"><thead><tr><th>attendee</th><th>code</th><th>requests</th><th>prompt</th><th>image</th>
<th>output</th><th>USD</th><th>budget</th><th>429s</th><th>refusals</th><th>last request</th></tr></thead>
<tbody></tbody></table>
<script>
"use strict";
const keyBox = document.getElementById("key");
keyBox.value = sessionStorage.getItem("roomAdminKey") || "";
function cell(row, text, cls) { const td = row.insertCell(); td.textContent = text; if (cls) td.className = cls; }
function when(t) { return t ? new Date(t * 1000).toLocaleTimeString() : ""; }
async function poll() {
  const key = sessionStorage.getItem("roomAdminKey");
  if (!key) return;
  try {
    const r = await fetch("/room/usage", {headers: {"api-key": key}});
    const data = await r.json();
    if (!r.ok) { document.getElementById("status").textContent = data.error.message; return; }
    const body = document.querySelector("#usage tbody");
    body.replaceChildren();
    for (const a of data.attendees) {
      const row = body.insertRow();
      cell(row, a.attendee); cell(row, a.code_hint, a.revoked ? "revoked" : "");
      cell(row, a.requests); cell(row, a.prompt_tokens); cell(row, a.image_tokens); cell(row, a.output_tokens);
      cell(row, a.usd.toFixed(4)); cell(row, a.budget_usd.toFixed(2)); cell(row, a.throttled); cell(row, a.refusals);
      cell(row, when(a.last_request));
    }
    const t = data.totals;
    document.getElementById("totals").textContent =
      `${t.requests} requests, $${t.usd.toFixed(4)} spent of $${t.budget_usd.toFixed(2)}; window ${data.window.state} ` +
      `(${data.window.starts} to ${data.window.ends}); quota in use: ${JSON.stringify(data.quota)}`;
    document.getElementById("status").textContent = "Updated " + new Date().toLocaleTimeString();
  } catch (e) { document.getElementById("status").textContent = "Cannot reach the room: " + e; }
}
document.getElementById("login").addEventListener("submit", (ev) => {
  ev.preventDefault(); sessionStorage.setItem("roomAdminKey", keyBox.value); poll();
});
poll(); setInterval(poll, 3000);
</script></body></html>
"""
