// comethook inspector: a live list of exchanges, filters in the URL, the event stream, and start-up; the detail pane and
// replay are in detail.js, the Send and Answers panels in panels.js (loaded after this one, sharing its globals).
// Hand-written, no framework. Everything from the network is written with textContent, never as HTML.
"use strict";

const TOKEN = document.querySelector('meta[name="comethook-token"]').content;
const ROW_HEIGHT = 34;
const OVERSCAN = 8;
const PAGE = 200;

const state = {
  rows: [],          // slim records, newest first
  ids: new Set(),    // ids in `rows`
  next: null,        // cursor of the next (older) page; null when all are loaded
  loading: false,
  cursor: -1,        // index of the highlighted row (j/k)
  openId: null,      // exchange shown in the detail pane
  filters: { q: "", trigger: [], verdict: "", status: "" },
  session: { mode: "listen", budget_ms: 2000 },
  source: null,
  generation: 0,     // bumps on every reload, so answers of an older reload are ignored
  pool: [],
};

const $ = (id) => document.getElementById(id);

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

// --- the API ---------------------------------------------------------------------------------------
async function api(path, options = {}) {
  const init = { method: options.method || "GET", headers: {} };
  if (options.body !== undefined) {
    init.body = JSON.stringify(options.body);
    init.headers["Content-Type"] = "application/json";
  }
  if (init.method !== "GET") init.headers["X-Comethook-Token"] = TOKEN;
  const response = await fetch(path, init);
  const document_ = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  if (!response.ok) {
    const error = new Error(document_.error || `HTTP ${response.status}`);
    error.hint = document_.hint;
    throw error;
  }
  return document_;
}

function filterQuery(extra = {}) {
  const params = new URLSearchParams();
  const f = state.filters;
  if (f.q) params.set("q", f.q);
  if (f.trigger.length) params.set("trigger", f.trigger.join(","));
  if (f.verdict) params.set("verdict", f.verdict);
  if (f.status) params.set("status", f.status);
  for (const [key, value] of Object.entries(extra)) if (value !== null && value !== undefined) params.set(key, value);
  return params;
}

// --- records -----------------------------------------------------------------------------------------
// The list keeps a slim copy of each `event` record: with 50,000 exchanges, bodies stay on the server.
function slim(record) {
  const body = record.body;
  const text = (body && typeof body === "object") ? JSON.stringify(body) : String(body ?? "");
  const replayOf = Object.entries(record.headers || {}).find(([name]) => name.toLowerCase() === "x-comethook-replay-of");
  return {
    id: record.id, received_at: record.received_at, trigger: record.trigger, generation: record.generation,
    summary: record.summary, status: record.response ? record.response.status : null, verdict: record.verdict,
    latency_ms: record.latency_ms, forwarded_to: record.forwarded_to, forward_error: record.forward_error,
    answered_by: record.answered_by, replay_of: replayOf ? replayOf[1] : null,
    haystack: (record.id + " " + record.trigger + " " + record.summary + " " + text.slice(0, 4096)).toLowerCase(),
  };
}

function matches(row) {
  const f = state.filters;
  if (f.trigger.length && !f.trigger.includes(row.trigger)) return false;
  if (f.verdict && row.verdict !== f.verdict) return false;
  if (f.status && String(row.status || "")[0] !== f.status[0]) return false;
  if (f.q && !row.haystack.includes(f.q.toLowerCase())) return false;
  return true;
}

// --- loading -----------------------------------------------------------------------------------------
async function reload(resume = true) {
  const generation = ++state.generation;
  state.rows = [];
  state.ids = new Set();
  state.next = null;
  state.cursor = -1;
  renderRows(true);
  let page;
  try {
    page = await api("/api/exchanges?" + filterQuery({ limit: PAGE }));
  } catch (error) {
    toast(`Could not load the exchanges: ${error.message}`);
    return;
  }
  if (generation !== state.generation) return;
  addPage(page);
  connect(resume);
}

async function loadMore() {
  if (state.loading || state.next === null) return;
  state.loading = true;
  const generation = state.generation;
  try {
    const page = await api("/api/exchanges?" + filterQuery({ limit: PAGE, before: state.next }));
    if (generation === state.generation) addPage(page);
  } catch (error) {
    toast(`Could not load older exchanges: ${error.message}`);
  } finally {
    state.loading = false;
  }
}

function addPage(page) {
  for (const record of page.exchanges) {
    if (state.ids.has(record.id)) continue;
    state.ids.add(record.id);
    state.rows.push(slim(record));
  }
  state.next = page.next;
  renderRows(true);
  maybeLoadMore();
}

function addLive(record) {
  if (state.ids.has(record.id)) return;
  const row = slim(record);
  if (!matches(row)) return;
  state.ids.add(row.id);
  state.rows.unshift(row);
  if (state.cursor >= 0) state.cursor += 1;
  const viewport = $("viewport");
  // Someone reading further down keeps their place; at the top, the new row shows.
  if (viewport.scrollTop > 0) viewport.scrollTop += ROW_HEIGHT;
  renderRows(true);
  flash(row.id);
}

// --- the event stream ----------------------------------------------------------------------------------
const START = "start";  // ?after=start: everything stored so far (the server reloads the page if that is too much)

function connect(resume) {
  if (state.source) state.source.close();
  // Resume after the newest exchange known (the server sends what came since, each once). Not after the server
  // said "reload": that exchange may be gone from the history, and resuming from it would only say so again.
  // An empty, unfiltered list means the history was empty when it loaded: resume from its start, so a
  // delivery stored between that load and this stream's start is not lost.
  const empty = !state.rows.length && !hasFilters();
  const newest = !resume ? null : state.rows.length && !hasFilters() ? state.rows[0].id : latestSeen || (empty ? START : null);
  const source = new EventSource("/api/stream" + (newest ? "?after=" + encodeURIComponent(newest) : ""));
  state.source = source;
  source.onopen = () => setLive(true);
  source.onerror = () => setLive(false);  // EventSource reconnects by itself, sending Last-Event-ID
  source.onmessage = (message) => {
    let record;
    try {
      record = JSON.parse(message.data);
    } catch {
      return;
    }
    if (record.type === "event") {
      latestSeen = record.id;
      addLive(record);
    } else if (record.type === "tunnel" || record.type === "app") {
      health[record.type] = { state: record.state, url: record.url, detail: record.detail };
      showHealth();
    } else if (record.type === "reload") {
      source.close();
      reload(false);
    }
  };
}
let latestSeen = null;

// What the session's watches found: {tunnel: {state, url, detail}, app: {...}} (the session API, then the stream).
const health = {};

function showHealth() {
  const badge = $("health");
  const down = ["tunnel", "app"].filter((subject) => health[subject] && health[subject].state === "down");
  const tunnel = health.tunnel;
  badge.hidden = !down.length && !tunnel;
  badge.className = "health " + (down.length ? "down" : tunnel ? tunnel.state : "");
  if (down.length) {
    badge.textContent = down.map((subject) => subject.toUpperCase() + " DOWN").join(" · ");
    badge.title = down.map((subject) => health[subject].detail).join("\n");
  } else if (tunnel) {
    badge.textContent = tunnel.state === "up" ? "tunnel ok" : "tunnel: checking…";
    badge.title = "Probed through " + tunnel.url + (tunnel.detail ? "\n" + tunnel.detail : "");
  }
}

function setLive(on) {
  const live = $("live");
  live.textContent = on ? "live" : "reconnecting…";
  live.className = "live " + (on ? "on" : "off");
}

// --- the virtual list -----------------------------------------------------------------------------------
function hasFilters() {
  const f = state.filters;
  return Boolean(f.q || f.trigger.length || f.verdict || f.status);
}

function renderRows(resize) {
  const viewport = $("viewport");
  const spacer = $("spacer");
  if (resize) spacer.style.height = `${state.rows.length * ROW_HEIGHT}px`;
  $("empty").hidden = state.rows.length > 0;
  $("empty").textContent = hasFilters() ? "No exchange matches these filters." : "No exchanges yet. Deliveries appear here as they arrive.";
  $("count").textContent = `${state.rows.length.toLocaleString()}${state.next !== null ? "+" : ""} exchange${state.rows.length === 1 ? "" : "s"}`;
  const first = Math.max(0, Math.floor(viewport.scrollTop / ROW_HEIGHT) - OVERSCAN);
  const visible = Math.ceil(viewport.clientHeight / ROW_HEIGHT) + OVERSCAN * 2;
  const last = Math.min(state.rows.length, first + visible);
  while (state.pool.length < last - first) {
    const node = makeRow();
    state.pool.push(node);
    spacer.appendChild(node);
  }
  state.pool.forEach((node, n) => {
    const index = first + n;
    if (index >= last) {
      node.hidden = true;
      return;
    }
    node.hidden = false;
    fillRow(node, state.rows[index], index);
  });
}

function makeRow() {
  const node = el("div", "row");
  node.setAttribute("role", "button");
  for (const name of ["time", "trigger", "summary", "status", "verdict", "latency"]) node.appendChild(el("span", "c-" + name));
  node.addEventListener("click", () => {
    state.cursor = Number(node.dataset.index);
    openExchange(node.dataset.id);
    renderRows(false);
  });
  return node;
}

function fillRow(node, row, index) {
  if (node.dataset.id === row.id && node.dataset.index === String(index) && node.dataset.state === rowState(row, index)) return;
  node.dataset.id = row.id;
  node.dataset.index = String(index);
  node.dataset.state = rowState(row, index);
  node.style.transform = `translateY(${index * ROW_HEIGHT}px)`;
  node.classList.toggle("cursor", index === state.cursor);
  node.classList.toggle("open", row.id === state.openId);
  const [time, trigger, summary, status, verdict, latency] = node.children;
  time.textContent = clock(row.received_at);
  time.title = row.received_at;
  trigger.replaceChildren(el("span", "trigger", row.trigger), el("span", "gen " + row.generation, row.generation === "legacy" ? "legacy" : ""));
  summary.replaceChildren();
  if (row.replay_of) summary.appendChild(el("span", "marker replay", "↻ replay"));
  if (row.forwarded_to) {
    const fallback = (row.answered_by || "").includes("fallback");
    summary.appendChild(el("span", "marker " + (fallback ? "fallback" : "forward"), fallback ? "⚠ fallback" : "→ app"));
  }
  summary.appendChild(el("span", "text", row.summary));
  summary.title = row.summary;
  status.textContent = row.status ?? "—";
  status.className = "c-status s" + String(row.status || "0")[0];
  verdict.replaceChildren(row.verdict ? el("span", "badge " + row.verdict, row.verdict.toUpperCase()) : el("span", "muted", ""));
  latency.replaceChildren(latencyBar(row.latency_ms));
}

function rowState(row, index) {
  return `${index === state.cursor}|${row.id === state.openId}`;
}

function latencyBar(ms) {
  const budget = state.session.budget_ms || 2000;
  const wrap = el("span", "latency" + (ms > budget ? " over" : ""));
  const bar = el("span", "bar");
  const fill = el("span", "fill");
  fill.style.width = `${Math.min(100, (ms / budget) * 100).toFixed(1)}%`;
  bar.appendChild(fill);
  wrap.append(bar, el("span", "ms", formatMs(ms)));
  wrap.title = `${formatMs(ms)} of CometChat's ${budget / 1000} s budget`;
  return wrap;
}

function formatMs(ms) {
  if (ms === null || ms === undefined) return "—";
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : ms >= 10 ? `${Math.round(ms)} ms` : `${ms.toFixed(1)} ms`;
}

function clock(iso) {
  const date = new Date(iso);
  const today = new Date();
  const time = date.toLocaleTimeString([], { hour12: false }) + "." + String(date.getMilliseconds()).padStart(3, "0");
  return date.toDateString() === today.toDateString() ? time : `${date.toLocaleDateString()} ${time}`;
}

function flash(id) {
  for (const node of state.pool) if (node.dataset.id === id) node.classList.add("new");
  setTimeout(() => {
    for (const node of state.pool) node.classList.remove("new");
  }, 1200);
}

function maybeLoadMore() {
  const viewport = $("viewport");
  if (viewport.scrollTop + viewport.clientHeight > state.rows.length * ROW_HEIGHT - ROW_HEIGHT * 20) loadMore();
}

// --- keyboard ------------------------------------------------------------------------------------------
function moveCursor(step) {
  if (!state.rows.length) return;
  state.cursor = Math.max(0, Math.min(state.rows.length - 1, (state.cursor < 0 ? -1 : state.cursor) + step));
  const viewport = $("viewport");
  const top = state.cursor * ROW_HEIGHT;
  if (top < viewport.scrollTop) viewport.scrollTop = top;
  else if (top + ROW_HEIGHT > viewport.scrollTop + viewport.clientHeight) viewport.scrollTop = top + ROW_HEIGHT - viewport.clientHeight;
  renderRows(false);
  if (state.cursor >= state.rows.length - 20) loadMore();
}

document.addEventListener("keydown", (event) => {
  const typing = /^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement?.tagName || "") || document.querySelector("dialog[open]");
  if (event.key === "Escape" && document.activeElement === $("q")) {
    event.preventDefault();  // a search field clears itself on Escape; here Escape only leaves it
    $("q").blur();
    return;
  }
  if (typing || event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.key === "j" || event.key === "ArrowDown") {
    moveCursor(1);
    event.preventDefault();
  } else if (event.key === "k" || event.key === "ArrowUp") {
    moveCursor(-1);
    event.preventDefault();
  } else if (event.key === "Enter" && state.cursor >= 0) {
    openExchange(state.rows[state.cursor].id);
    event.preventDefault();
  } else if (event.key === "/") {
    $("q").focus();
    $("q").select();
    event.preventDefault();
  }
});

// --- filters and the URL ------------------------------------------------------------------------------------------
function readUrl() {
  const params = new URLSearchParams(location.search);
  state.filters.q = params.get("q") || "";
  state.filters.trigger = (params.get("trigger") || "").split(",").filter(Boolean);
  state.filters.verdict = params.get("verdict") || "";
  state.filters.status = params.get("status") || "";
  state.openId = params.get("id");
  $("q").value = state.filters.q;
  $("verdict").value = state.filters.verdict;
  $("status").value = state.filters.status;
}

function writeUrl() {
  const params = filterQuery();
  if (state.openId) params.set("id", state.openId);
  const search = params.toString();
  history.replaceState(null, "", search ? "?" + search : location.pathname);
  $("har-link").href = "/api/export.har?" + filterQuery().toString();
}

function filtersChanged() {
  state.filters.q = $("q").value.trim();
  state.filters.verdict = $("verdict").value;
  state.filters.status = $("status").value;
  state.filters.trigger = [...document.querySelectorAll("#trigger-list input:checked")].map((input) => input.value);
  $("trigger-summary").textContent = state.filters.trigger.length ? state.filters.trigger.join(", ") : "All triggers";
  writeUrl();
  reload();
}

let searchTimer = null;
$("q").addEventListener("input", () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(filtersChanged, 250);
});
$("filters").addEventListener("submit", (event) => {
  event.preventDefault();
  clearTimeout(searchTimer);
  filtersChanged();
  $("q").blur();
});
$("verdict").addEventListener("change", filtersChanged);
$("status").addEventListener("change", filtersChanged);
$("clear-filters").addEventListener("click", () => {
  $("q").value = "";
  $("verdict").value = "";
  $("status").value = "";
  for (const input of document.querySelectorAll("#trigger-list input")) input.checked = false;
  filtersChanged();
});

async function loadTriggers() {
  let names = [];
  try {
    const { payloads } = await api("/api/catalog");
    names = [...new Set(payloads.map((p) => p.trigger))].sort();
  } catch {
    return;
  }
  const list = $("trigger-list");
  for (const name of new Set([...names, ...state.filters.trigger])) {
    const label = el("label");
    const input = el("input");
    input.type = "checkbox";
    input.value = name;
    input.checked = state.filters.trigger.includes(name);
    input.addEventListener("change", filtersChanged);
    label.append(input, el("span", null, name));
    list.appendChild(label);
  }
  $("trigger-summary").textContent = state.filters.trigger.length ? state.filters.trigger.join(", ") : "All triggers";
}

// --- small things ---------------------------------------------------------------------------------------------------
let toastTimer = null;
function toast(text) {
  const box = $("toast");
  box.textContent = text;
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { box.hidden = true; }, 4000);
}

async function copy(text, done) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const area = el("textarea");
    area.value = text;
    document.body.appendChild(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  toast(done);
}

for (const dialog of document.querySelectorAll("dialog")) {
  dialog.addEventListener("click", (event) => {
    if (event.target === dialog) dialog.close();  // a click on the backdrop
  });
}

$("viewport").addEventListener("scroll", () => {
  renderRows(false);
  maybeLoadMore();
}, { passive: true });
window.addEventListener("resize", () => renderRows(false));

async function start() {
  readUrl();
  writeUrl();
  try {
    state.session = await api("/api/session");
  } catch {
    /* keep the defaults */
  }
  const where = $("where");
  if (state.session.mode === "inspect") {
    where.textContent = "stored history (comethook inspect)";
  } else if (state.session.webhook_url) {
    where.append(el("span", "muted", "webhook "), el("span", "mono", state.session.webhook_url));
  }
  if (!state.session.history) toast("This session keeps no history: only new deliveries show.");
  Object.assign(health, state.session.health || {});
  showHealth();
  loadTriggers();
  loadRules();
  await reload();
  if (state.openId) openExchange(state.openId);
}

// After every deferred script ran (detail.js and panels.js come after this one and use its globals).
document.addEventListener("DOMContentLoaded", start);
