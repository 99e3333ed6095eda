// fedinf admin UI: vanilla JS over the admin API (/admin/...), authenticated by the HttpOnly session cookie.
// Every value from the server is put into the page as text (textContent), never as HTML.
"use strict";

const state = { csrf: "", session: null, oldest: null, newest: null, liveTimer: null, tasksTimer: null, tab: "" };
const POLL_MS = 2000;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function notice(message, kind) {
  const box = document.getElementById("notice");
  box.textContent = message;
  box.className = "notice " + (kind || "error");
  box.hidden = !message;
}

async function api(path, options) {
  const opts = Object.assign({ credentials: "same-origin", headers: {} }, options || {});
  if (opts.method && opts.method !== "GET") opts.headers["x-fedinf-csrf"] = state.csrf;
  if (opts.json !== undefined) {
    opts.headers["content-type"] = "application/json";
    opts.body = JSON.stringify(opts.json);
    delete opts.json;
  }
  const r = await fetch(path, opts);
  const text = await r.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch (e) { body = null; }
  if (r.status === 401) { window.location.assign("/ui/"); throw new Error("session ended"); }
  if (!r.ok) {
    const msg = body && body.error ? body.error.message + " (" + body.error.code + ")" : r.status + " " + r.statusText;
    throw new Error(msg);
  }
  return body;
}

function fmtTime(value) {
  if (value === null || value === undefined || value === "") return "";
  const d = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  return isNaN(d) ? String(value) : d.toISOString().replace("T", " ").slice(0, 19);
}

function badge(text, kind) { return el("span", { class: "badge " + (kind || text) }, text); }

// ------------------------------------------------------------------ network

async function loadNetwork() {
  const net = await api("/admin/network");
  document.getElementById("net-use").textContent = "declared use: " + net.use;
  const zones = document.getElementById("zones");
  zones.replaceChildren(...net.zones.map(zoneCard));
  const tbody = document.querySelector("#routes tbody");
  tbody.replaceChildren(...Object.entries(net.routes).map(([name, r]) =>
    el("tr", {}, el("td", {}, name), el("td", {}, r.strategy), el("td", {}, r.models.join(" → ")))));
}

function zoneCard(zone) {
  const models = zone.models.map((m) => {
    const reps = m.replicas || [];
    const good = reps.filter((r) => r.healthy && !r.ejected && r.breaker !== "open").length;
    const health = !m.served ? badge("not served", "bad") :
      badge(good + "/" + reps.length + " healthy", good === reps.length ? "ok" : good ? "warn" : "bad");
    const caps = Object.entries(m.capabilities).filter(([k, v]) => v && v !== "none")
      .map(([k, v]) => (v === true ? k : k + ":" + v)).join(", ");
    return el("tr", { "data-model": m.id },
      el("td", {}, el("strong", {}, m.id), el("div", { class: "muted small" }, m.backend)),
      el("td", {}, m.license, el("div", {}, badge(m.license_status, m.served ? "ok" : "bad")),
        m.served ? null : el("div", { class: "muted small" }, m.license_reason)),
      el("td", {}, health, el("div", { class: "small" }, reps.map((r) =>
        el("div", { class: "replica" }, r.name + ": " + (r.healthy ? "healthy" : "unhealthy") +
          (r.ejected ? ", ejected" : "") + (r.breaker !== "closed" ? ", breaker " + r.breaker : "") +
          (r.ewma_ms !== null && r.ewma_ms !== undefined ? ", " + r.ewma_ms + " ms" : ""))))),
      el("td", { class: "small" }, caps || "-"));
  });
  return el("div", { class: "zone", "data-zone": zone.name },
    el("div", { class: "zone-head" }, el("h3", {}, zone.name), badge(zone.kind, "kind"),
      el("span", {}, "clearance ", badge(zone.clearance, "cls-" + zone.clearance)),
      zone.pseudonymized_clearance ? el("span", { class: "small" }, "pseudonymized: " + zone.pseudonymized_clearance) : null),
    zone.description ? el("p", { class: "muted small" }, zone.description) : null,
    models.length ? el("table", {}, el("thead", {}, el("tr", {}, ["model", "license", "health", "capabilities"]
      .map((h) => el("th", {}, h)))), el("tbody", {}, models)) : el("p", { class: "muted" }, "no models"));
}

// ------------------------------------------------------------------ decisions (audit trail)

function filterQuery() {
  const form = new FormData(document.getElementById("filters"));
  const q = new URLSearchParams();
  for (const [k, v] of form.entries()) if (String(v).trim()) q.set(k, String(v).trim());
  return q;
}

function recordRow(r) {
  const c = r.classification || {}, d = r.decision || {};
  const entities = Object.entries(c.entities || {}).map(([k, n]) => k + "×" + n).join(", ");
  const ok = r.status < 400;
  const attempts = (d.attempts || []).map((a) => a.model + (a.replica ? "@" + a.replica : "") + " " + a.outcome +
    (a.error_code ? " (" + a.error_code + ")" : "")).join("; ");
  const excluded = Object.entries(d.excluded || {}).map(([m, why]) => m + ": " + why).join("\n");
  return el("tr", { "data-seq": r.seq, class: ok ? "" : "failed" },
    el("td", {}, r.seq), el("td", {}, fmtTime(r.time)),
    el("td", {}, r.tenant || "-", el("div", { class: "muted small" }, r.key_id || "")),
    el("td", {}, badge(c.data_class || "?", "cls-" + c.data_class),
      c.adjustment ? el("div", { class: "small" }, c.adjustment + " from " + c.detected_class) : null),
    el("td", { class: "small" }, entities || "-"),
    el("td", {}, r.model_requested || "-"),
    el("td", { title: excluded || null }, d.chosen_model ? d.chosen_model + " (" + d.chosen_zone + ")" : "-",
      excluded ? el("div", { class: "muted small" }, "excluded: " + Object.keys(d.excluded).join(", ")) : null),
    el("td", {}, badge(ok ? "ok" : String(r.status), ok ? "ok" : "bad"),
      r.error_code ? el("div", { class: "small" }, r.error_code) : null),
    el("td", { class: "small" }, attempts || "-"),
    el("td", {}, r.latency_ms === null || r.latency_ms === undefined ? "" : Math.round(r.latency_ms) + " ms"));
}

function countLine() {
  const n = document.querySelectorAll("#decisions tbody tr").length;
  document.getElementById("dec-count").textContent = n + " record(s) shown" +
    (document.getElementById("live").checked ? " · live" : "");
}

async function loadDecisions() {
  const q = filterQuery();
  q.set("order", "desc");
  q.set("limit", "100");
  const page = await api("/admin/audit?" + q.toString());
  const rows = page.data;
  document.querySelector("#decisions tbody").replaceChildren(...rows.map(recordRow));
  state.newest = rows.length ? rows[0].seq : 0;
  state.oldest = rows.length ? rows[rows.length - 1].seq : null;
  document.getElementById("older").hidden = rows.length < 100;
  countLine();
  document.body.dataset.decisions = q.toString();  // what is shown (lets tests and users see the active query)
  schedulePoll();
}

async function loadOlder() {
  const q = filterQuery();
  q.set("order", "desc");
  q.set("limit", "100");
  q.set("before_seq", state.oldest);
  const rows = (await api("/admin/audit?" + q.toString())).data;
  document.querySelector("#decisions tbody").append(...rows.map(recordRow));
  if (rows.length) state.oldest = rows[rows.length - 1].seq;
  document.getElementById("older").hidden = rows.length < 100;
  countLine();
}

async function pollDecisions() {
  state.liveTimer = null;
  if (state.tab !== "decisions" || !document.getElementById("live").checked) return;
  try {
    const q = filterQuery();
    q.set("after_seq", state.newest || 0);
    q.set("limit", "500");
    const rows = (await api("/admin/audit?" + q.toString())).data;
    const tbody = document.querySelector("#decisions tbody");
    for (const r of rows) tbody.prepend(recordRow(r));
    if (rows.length) state.newest = rows[rows.length - 1].seq;
    countLine();
  } catch (e) {
    notice("live update failed: " + e.message);
  }
  schedulePoll();
}

function schedulePoll() {
  if (state.liveTimer) clearTimeout(state.liveTimer);
  state.liveTimer = setTimeout(pollDecisions, POLL_MS);
}

async function verifyChain() {
  const box = document.getElementById("verify-result");
  box.hidden = false;
  box.className = "verify";
  box.textContent = "verifying…";
  const rep = await api("/admin/audit/verify");
  box.className = "verify " + (rep.ok ? "ok" : "bad");
  const head = rep.ok
    ? "Chain intact: " + rep.records + " record(s), seq " + (rep.first_seq ?? "-") + "–" + (rep.last_seq ?? "-") +
      (rep.keyed ? " (HMAC-keyed)" : "")
    : "Chain BROKEN: " + rep.problems_total + " problem(s) in " + rep.records + " record(s)";
  box.replaceChildren(el("strong", {}, head),
    rep.last_hash ? el("div", { class: "small mono" }, "head hash " + rep.last_hash) : null,
    el("ul", {}, rep.problems.map((p) => el("li", {}, "seq " + p.seq + " · " + p.kind + ": " + p.message))));
}

// ------------------------------------------------------------------ keys

async function loadKeys() {
  const all = document.getElementById("keys-all").checked;
  const keys = (await api("/admin/keys" + (all ? "?all=true" : ""))).data;
  document.querySelector("#keys tbody").replaceChildren(...keys.map((k) =>
    el("tr", { "data-key": k.key_id, class: k.state === "active" ? "" : "inactive" },
      el("td", { class: "mono" }, k.key_id), el("td", {}, k.tenant), el("td", {}, k.name),
      el("td", {}, k.roles.join(", ")), el("td", {}, k.scopes.max_class), el("td", {}, fmtTime(k.created_at)),
      el("td", {}, badge(k.state, k.state === "active" ? "ok" : "bad")),
      el("td", {}, k.state === "active" && !(state.session && k.key_id === state.session.key_id)
        ? el("button", { class: "danger", "data-revoke": k.key_id, onclick: () => revokeKey(k) }, "Revoke")
        : null))));
}

async function createKey(event) {
  event.preventDefault();
  const form = new FormData(event.target);
  const body = { tenant: form.get("tenant"), name: form.get("name") || "", roles: [form.get("role")] };
  if (form.get("max_class")) body.scopes = { max_class: form.get("max_class") };
  const rec = await api("/admin/keys", { method: "POST", json: body });
  const box = document.getElementById("secret");
  box.hidden = false;
  box.replaceChildren(el("strong", {}, "Key " + rec.key_id + " created. Copy the secret now; it is not shown again:"),
    el("code", { id: "new-secret" }, rec.secret));
  event.target.reset();
  await loadKeys();
}

async function revokeKey(k) {
  if (!window.confirm("Revoke key " + k.key_id + " (" + k.tenant + (k.name ? ", " + k.name : "") + ")?")) return;
  await api("/admin/keys/" + encodeURIComponent(k.key_id), { method: "DELETE" });
  notice("key " + k.key_id + " revoked", "info");
  await loadKeys();
}

// ------------------------------------------------------------------ tasks and batches

async function loadTasks() {
  const data = await api("/admin/tasks");
  document.querySelector("#tasks tbody").replaceChildren(...data.tasks.map((t) =>
    el("tr", { "data-task": t.name }, el("td", {}, el("strong", {}, t.name)), el("td", {}, t.description),
      el("td", { class: "small" }, Object.keys((t.output_schema || {}).properties || {}).join(", ")),
      el("td", {}, t.route || "-"))));
  const tbody = document.querySelector("#batches tbody");
  if (state.tasksTimer) clearTimeout(state.tasksTimer);
  if (data.batches.some((b) => b.state === "running")) {  // follow running batches until they end
    state.tasksTimer = setTimeout(() => { if (state.tab === "tasks") loadTasks().catch((e) => notice(e.message)); },
      POLL_MS);
  }
  if (!data.batches.length) {
    tbody.replaceChildren(el("tr", {}, el("td", { colspan: 10, class: "muted" }, "no batch runs yet")));
    return;
  }
  tbody.replaceChildren(...data.batches.map((b) => {
    const done = b.ok + b.errors + b.skipped + b.duplicates;
    const pct = b.total ? Math.round((100 * done) / b.total) : 100;
    const kind = { running: "warn", done: "ok" }[b.state] || "bad";
    return el("tr", { "data-batch": b.id }, el("td", { class: "mono small" }, b.id), el("td", {}, b.task),
      el("td", { class: "small" }, b.out), el("td", {}, badge(b.state, kind)),
      el("td", {}, el("progress", { max: b.total || 1, value: done }), " " + done + "/" + b.total + " (" + pct + "%)"),
      el("td", {}, b.ok), el("td", { title: JSON.stringify(b.error_codes) }, b.errors), el("td", {}, b.skipped),
      el("td", {}, fmtTime(b.started_at)), el("td", {}, fmtTime(b.updated_at)));
  }));
}

// ------------------------------------------------------------------ shell

const LOADERS = { network: loadNetwork, decisions: loadDecisions, keys: loadKeys, tasks: loadTasks };

async function show(tab) {
  if (!LOADERS[tab]) tab = "network";
  state.tab = tab;
  for (const a of document.querySelectorAll("#tabs a")) a.classList.toggle("active", a.dataset.tab === tab);
  for (const s of document.querySelectorAll(".tab")) s.hidden = s.id !== "tab-" + tab;
  notice("");
  try {
    await LOADERS[tab]();
  } catch (e) {
    notice(e.message);
  }
  document.body.dataset.loaded = tab;
}

function guard(fn) {
  return async (event) => {
    try { await fn(event); } catch (e) { if (event && event.preventDefault) event.preventDefault(); notice(e.message); }
  };
}

async function start() {
  state.session = await api("/ui/session");
  state.csrf = state.session.csrf;
  document.getElementById("who").textContent = state.session.key_id + " · " + state.session.tenant + " · " +
    state.session.roles.join(", ");
  if (!state.session.roles.includes("admin")) document.querySelector('#tabs a[data-tab="keys"]').hidden = true;
  document.getElementById("logout").addEventListener("click", guard(async () => {
    await api("/ui/logout", { method: "POST" });
    window.location.assign("/ui/");
  }));
  document.getElementById("net-refresh").addEventListener("click", guard(loadNetwork));
  document.getElementById("filters").addEventListener("submit", guard(async (e) => { e.preventDefault(); await loadDecisions(); }));
  document.getElementById("live").addEventListener("change", () => { countLine(); schedulePoll(); });
  document.getElementById("verify").addEventListener("click", guard(verifyChain));
  document.getElementById("older").addEventListener("click", guard(loadOlder));
  document.getElementById("new-key").addEventListener("submit", guard(createKey));
  document.getElementById("keys-all").addEventListener("change", guard(loadKeys));
  window.addEventListener("hashchange", () => show(window.location.hash.slice(1)));
  await show(window.location.hash.slice(1));
}

document.addEventListener("DOMContentLoaded", () => { start().catch((e) => notice(e.message)); });
