// The hotreload web page: plain JavaScript over the admin API.
// Everything from the daemon is shown with textContent, never as HTML.
"use strict";

const state = {
  token: sessionStorage.getItem("hotreload-token"),
  components: new Map(), // name -> component
  recent: new Map(),     // name -> last reload events, newest last
  selected: null,
  lastId: 0,
};

const $ = (id) => document.getElementById(id);

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

async function api(method, path, body, contentType) {
  const headers = {};
  if (state.token) headers["Authorization"] = "Bearer " + state.token;
  if (body !== undefined) headers["Content-Type"] = contentType || "application/json";
  const res = await fetch(path, { method, headers, body });
  if (res.status === 401) {
    askToken();
    throw new Error("the token is missing or wrong");
  }
  let json = null;
  try { json = await res.json(); } catch (_) { /* not JSON */ }
  return { status: res.status, json, etag: res.headers.get("ETag") };
}

function askToken() {
  $("token-button").hidden = false;
  const dialog = $("token-dialog");
  if (!dialog.open) dialog.showModal();
}

$("token-form").addEventListener("submit", (ev) => {
  if (ev.submitter && ev.submitter.value === "ok") {
    state.token = $("token-input").value.trim();
    sessionStorage.setItem("hotreload-token", state.token);
    $("token-input").value = "";
    refresh();
  }
});
$("token-button").addEventListener("click", askToken);

function outcomeClass(outcome) {
  if (outcome === "applied" || outcome === "unchanged") return "ok";
  if (outcome === "restart_required") return "warn";
  return "bad";
}

function stateOf(c) {
  if (c.degraded) return ["degraded", "bad"];
  if (c.pending !== null && c.pending !== undefined) return ["pending restart", "warn"];
  return ["ok", "ok"];
}

// A timeline of recent reloads: one bar per event, its colour the
// outcome, its height the duration (log scale).
function timeline(events) {
  const ns = "http://www.w3.org/2000/svg";
  const w = 8, gap = 2, h = 24, n = 20;
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("class", "timeline");
  svg.setAttribute("width", String(n * (w + gap)));
  svg.setAttribute("height", String(h));
  svg.setAttribute("role", "img");
  const last = events.slice(-n);
  svg.setAttribute("aria-label", last.map((e) => e.outcome).join(", ") || "no reloads yet");
  last.forEach((e, i) => {
    const us = Math.max(1, e.duration_us || 1);
    const bar = Math.max(3, Math.min(h, (Math.log10(us) / 6) * h));
    const r = document.createElementNS(ns, "rect");
    r.setAttribute("x", String(i * (w + gap)));
    r.setAttribute("y", String(h - bar));
    r.setAttribute("width", String(w));
    r.setAttribute("height", String(bar));
    r.setAttribute("class", "bar " + e.outcome);
    r.setAttribute("fill", { ok: "#1a7f37", warn: "#9a6700", bad: "#cf222e" }[outcomeClass(e.outcome)]);
    const title = document.createElementNS(ns, "title");
    title.textContent = `#${e.id} ${e.outcome} ${(us / 1000).toFixed(2)} ms`;
    r.appendChild(title);
    svg.appendChild(r);
  });
  return svg;
}

let stats = null;

function renderComponents() {
  const body = $("components").tBodies[0];
  body.replaceChildren();
  for (const c of state.components.values()) {
    const tr = el("tr", null, "component");
    tr.dataset.name = c.name;
    if (c.name === state.selected) tr.classList.add("selected");
    tr.appendChild(el("td", c.name));
    tr.appendChild(el("td", c.version));
    tr.appendChild(el("td", c.support_level || "-"));
    const [text, cls] = stateOf(c);
    tr.appendChild(el("td", text, cls));
    const s = stats && stats.components && stats.components[c.name];
    tr.appendChild(el("td", s ? (s.success_rate * 100).toFixed(0) + "%" : "-"));
    const td = el("td");
    td.appendChild(timeline(state.recent.get(c.name) || []));
    tr.appendChild(td);
    tr.addEventListener("click", () => select(c.name));
    body.appendChild(tr);
  }
}

function sourceText(source) {
  if (!source) return "-";
  let s = source.kind;
  if (source.from_version) s += " of version " + source.from_version;
  if (source.path) s += " " + source.path;
  return s;
}

async function select(name) {
  state.selected = name;
  renderComponents();
  const c = state.components.get(name);
  $("detail").hidden = false;
  $("detail-name").textContent = name;
  $("detail-version").textContent = c.version;
  $("detail-config").textContent = JSON.stringify(c.config, null, 2);
  $("detail-source").textContent = sourceText(c.source);
  $("dry-run-result").textContent = "";
  const { json } = await api("GET", `/v1/components/${encodeURIComponent(name)}/versions?limit=50`);
  const body = $("versions").tBodies[0];
  body.replaceChildren();
  const versions = (json && json.versions) || [];
  for (let i = 0; i < versions.length; i++) {
    const v = versions[i];
    const before = versions[i + 1];
    const tr = el("tr");
    tr.dataset.version = v.version;
    tr.appendChild(el("td", v.version));
    tr.appendChild(el("td", v.timestamp));
    tr.appendChild(el("td", sourceText(v.source)));
    const diff = el("td");
    if (before) {
      const d = await api("GET", `/v1/components/${encodeURIComponent(name)}/versions/${v.version}/diff?against=${before.version}`);
      const changes = (d.json && d.json.changes) || [];
      diff.appendChild(el("pre", changes.map(changeText).join("\n") || "(no change)"));
    } else {
      diff.appendChild(el("pre", JSON.stringify(v.config, null, 2)));
    }
    tr.appendChild(diff);
    const act = el("td");
    if (v.version !== c.version) {
      const b = el("button", "Roll back to " + v.version);
      b.type = "button";
      b.className = "rollback";
      b.addEventListener("click", () => confirmRollback(name, v));
      act.appendChild(b);
    }
    tr.appendChild(act);
    body.appendChild(tr);
  }
}

function changeText(ch) {
  const j = (x) => JSON.stringify(x);
  if (ch.op === "added") return `+ ${ch.path}: ${j(ch.new)}`;
  if (ch.op === "removed") return `- ${ch.path}: ${j(ch.old)}`;
  return `~ ${ch.path}: ${j(ch.old)} → ${j(ch.new)}`;
}

function eventText(e) {
  let s = `#${e.id} ${e.component} ${e.kind} ${e.outcome} v${e.version}`;
  if (e.error) s += `: ${e.error.message}` + (e.error.field ? ` at ${e.error.field}` : "");
  // A restart-required change says, field by field, why.
  if (e.restart && e.restart.length)
    s += ": " + e.restart.map((r) => `${r.field || "(the whole configuration)"}: ${r.reason}`).join("; ");
  return s;
}

async function confirmRollback(name, v) {
  $("rollback-name").textContent = name;
  $("rollback-version").textContent = v.version;
  const preview = $("rollback-preview");
  preview.textContent = "…";
  preview.className = "result";
  const dialog = $("rollback-dialog");
  dialog.returnValue = "";
  dialog.showModal();
  const dry = await api("PUT", `/v1/components/${encodeURIComponent(name)}/config?dry_run=true`,
    JSON.stringify(v.config));
  preview.textContent = dry.json ? eventText(dry.json) : `answer ${dry.status}`;
  preview.classList.add(dry.status === 200 ? "ok" : "bad");
  dialog.addEventListener("close", async function once() {
    dialog.removeEventListener("close", once);
    if (dialog.returnValue !== "ok") return;
    const r = await api("POST", `/v1/components/${encodeURIComponent(name)}/rollback`,
      JSON.stringify({ to_version: v.version }));
    $("dry-run-result").textContent = r.json ? eventText(r.json) : `answer ${r.status}`;
    await refresh();
    select(name);
  });
}

$("dry-run-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  if (!state.selected) return;
  const out = $("dry-run-result");
  const r = await api("PUT", `/v1/components/${encodeURIComponent(state.selected)}/config?dry_run=true`,
    $("dry-run-input").value, $("dry-run-format").value);
  out.textContent = r.json ? (r.json.outcome ? eventText(r.json) : r.json.error) : `answer ${r.status}`;
  out.className = "result " + (r.status === 200 ? "ok" : "bad");
});

function addEvent(e) {
  const list = $("events");
  const li = el("li", eventText(e), outcomeClass(e.outcome));
  li.dataset.id = e.id;
  list.prepend(li);
  while (list.children.length > 200) list.lastChild.remove();
  const recent = state.recent.get(e.component) || [];
  recent.push(e);
  state.recent.set(e.component, recent.slice(-20));
}

async function refresh() {
  const [{ json }, s] = await Promise.all([api("GET", "/v1/components"), api("GET", "/v1/stats")]);
  stats = s.json;
  state.components.clear();
  for (const c of (json && json.components) || []) state.components.set(c.name, c);
  renderComponents();
}

// Live events by long polling (a header can carry the token; an
// EventSource cannot).
async function follow() {
  for (;;) {
    try {
      const r = await api("GET", `/v1/events?since=${state.lastId}&wait=25s`);
      $("conn").textContent = "live";
      $("conn").className = "badge ok";
      const events = (r.json && r.json.events) || [];
      for (const e of events) addEvent(e);
      if (r.json && r.json.last_id !== undefined) state.lastId = r.json.last_id;
      if (events.length) {
        renderComponents();
        await refresh();
        if (state.selected) select(state.selected);
      }
    } catch (err) {
      $("conn").textContent = "disconnected: " + err.message;
      $("conn").className = "badge bad";
      await new Promise((ok) => setTimeout(ok, 2000));
    }
  }
}

refresh().then(follow, follow);
