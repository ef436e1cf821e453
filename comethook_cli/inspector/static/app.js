// comethook inspector: a live list of exchanges, a detail pane, filters in the URL, replay, send, answers.
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

// --- the detail pane ------------------------------------------------------------------------------------
async function openExchange(id) {
  state.openId = id;
  writeUrl();
  renderRows(false);
  let exchange;
  try {
    exchange = await api("/api/exchanges/" + encodeURIComponent(id));
  } catch (error) {
    toast(`Could not open ${id}: ${error.message}`);
    return;
  }
  if (state.openId !== id) return;
  let original = null;
  if (exchange.replay_of) original = await api("/api/exchanges/" + encodeURIComponent(exchange.replay_of)).catch(() => null);
  showDetail(exchange, original);
}

function section(title, kind, ...children) {
  const node = el("section", "card " + kind);
  node.appendChild(el("h3", null, title));
  node.append(...children);
  return node;
}

function keyValues(pairs) {
  const table = el("table", "kv");
  for (const [name, value] of pairs) {
    const row = el("tr");
    row.append(el("th", null, name), el("td", null, value));
    table.appendChild(row);
  }
  return table;
}

function showDetail(e, original) {
  $("placeholder").hidden = true;
  $("panes").classList.add("showing");  // the detail pane widens only once it has something to show
  const body = $("detail-body");
  body.hidden = false;
  body.replaceChildren();

  const head = el("div", "detail-head");
  const title = el("div", "title");
  title.append(el("span", "trigger big", e.trigger), e.verdict ? el("span", "badge " + e.verdict, e.verdict.toUpperCase()) : "");
  head.appendChild(title);
  head.appendChild(el("div", "summary", e.summary));
  head.appendChild(el("div", "muted small", `${e.id} · ${new Date(e.received_at).toLocaleString()} · ${e.generation}`));
  const actions = el("div", "actions");
  const replay = el("button", null, "Replay");
  replay.type = "button";
  replay.title = "Deliver the exact bytes again, to the original target";
  replay.addEventListener("click", () => doReplay(e, null, null));
  const edit = el("button", null, "Edit and replay…");
  edit.type = "button";
  edit.addEventListener("click", () => openEditor(e));
  const curl = el("button", null, "Copy as curl");
  curl.type = "button";
  curl.addEventListener("click", () => copy(e.curl, "curl command copied"));
  actions.append(replay, edit, curl);
  head.appendChild(actions);
  body.appendChild(head);

  if (original) body.appendChild(compare(original, e));
  if (e.trigger === "before_message" || e.verdict) body.appendChild(verdictCard(e));

  const request = section("Request", "request");
  request.appendChild(el("div", "request-line mono", `${e.method} ${e.path}`));
  request.appendChild(keyValues(Object.entries(e.headers || {})));
  request.appendChild(bodyView(e.body, e.raw, "request body"));
  body.appendChild(request);

  const answer = section("Answer", "answer");
  const statusLine = el("div", "request-line mono");
  statusLine.append(el("span", "s" + String(e.response.status)[0], `HTTP ${e.response.status}`), el("span", "muted", `  ${formatMs(e.latency_ms)} · answered by ${e.answered_by}`));
  answer.appendChild(statusLine);
  answer.appendChild(keyValues(e.response_headers || []));
  answer.appendChild(bodyView(e.response.body, e.response_raw, "answer body"));
  body.appendChild(answer);

  if (e.forwarded_to || e.forward_error) {
    const forward = section("Forwarded", "forwarded");
    const pairs = [["Target", e.forwarded_to || "—"], ["Latency", formatMs(e.latency_ms)]];
    if (e.forward_error) pairs.push(["Error", e.forward_error]);
    forward.appendChild(keyValues(pairs));
    if ((e.answered_by || "").includes("fallback")) forward.appendChild(el("p", "warn", `Your app did not answer; CometChat got the ${e.answered_by.replace(/^comethook \(|\)$/g, "")} answer.`));
    body.appendChild(forward);
  }
}

function verdictCard(e) {
  const card = section("What CometChat does with this answer", "verdict");
  if (e.verdict === "drop") {
    card.appendChild(el("p", "verdict-line drop", "Dropped: the message is not delivered to anyone."));
  } else if (e.verdict === "inject") {
    card.appendChild(el("p", "verdict-line inject", `Injected: the message is stored with this metadata (data.metadata["@injected"]["webhooks"]["${e.webhook_id}"]):`));
    card.appendChild(tree(e.metadata, true));
  } else if (e.verdict === "pass") {
    card.appendChild(el("p", "verdict-line pass", "Passed: the message is delivered unchanged."));
  } else {
    card.appendChild(el("p", "verdict-line invalid", `Invalid answer: ${e.verdict_reason || "not a documented answer"}.`));
  }
  if (e.verdict_reason && e.verdict !== "invalid") card.appendChild(el("p", "muted", e.verdict_reason));
  return card;
}

function compare(original, replayed) {
  const card = section(`Replay of ${original.id}`, "replay");
  const link = el("button", "link", "open the original");
  link.type = "button";
  link.addEventListener("click", () => openExchange(original.id));
  card.appendChild(link);
  const grid = el("div", "compare");
  for (const [label, e] of [["Original answer", original], ["This replay's answer", replayed]]) {
    const column = el("div", "column");
    const head = el("div", "compare-head");
    head.append(el("strong", null, label), el("span", "s" + String(e.response.status)[0], ` HTTP ${e.response.status}`));
    if (e.verdict) head.appendChild(el("span", "badge " + e.verdict, e.verdict.toUpperCase()));
    column.append(head, tree(e.response.body, true));
    grid.appendChild(column);
  }
  card.appendChild(grid);
  return card;
}

function bodyView(value, raw, what) {
  const wrap = el("div", "body-view");
  const bar = el("div", "body-bar");
  const toggle = el("button", "link", "raw");
  toggle.type = "button";
  const copyButton = el("button", "link", "copy");
  copyButton.type = "button";
  bar.append(toggle, copyButton);
  const pretty = tree(value, true);
  const plain = el("pre", "raw mono", raw ?? (typeof value === "string" ? value : JSON.stringify(value, null, 2)));
  plain.hidden = true;
  toggle.addEventListener("click", () => {
    plain.hidden = !plain.hidden;
    pretty.hidden = !plain.hidden;
    toggle.textContent = plain.hidden ? "raw" : "tree";
  });
  copyButton.addEventListener("click", () => copy(raw ?? JSON.stringify(value, null, 2), `${what} copied`));
  wrap.append(bar, pretty, plain);
  return wrap;
}

// A collapsible JSON tree; every key and value goes in with textContent.
function tree(value, open) {
  const root = el("div", "tree mono");
  root.appendChild(node(value, null, open, 0));
  return root;
}

function node(value, key, open, depth) {
  const label = () => {
    const span = el("span");
    if (key !== null) span.append(el("span", "k", JSON.stringify(key)), el("span", "p", ": "));
    return span;
  };
  const entries = value !== null && typeof value === "object" ? (Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value)) : null;
  if (entries && !entries.length) {  // {} or []: nothing to fold, so it shows whole, as a leaf
    const line = el("div", "leaf");
    line.append(label(), el("span", "p", Array.isArray(value) ? "[]" : "{}"));
    return line;
  }
  if (entries) {
    const details = el("details");
    details.open = open && depth < 6;
    const summary = el("summary");
    summary.appendChild(label());
    const [left, right] = Array.isArray(value) ? ["[", "]"] : ["{", "}"];
    summary.append(el("span", "p", left), el("span", "count", ` ${entries.length} ${Array.isArray(value) ? "item" : "key"}${entries.length === 1 ? "" : "s"} `), el("span", "p close", right));
    details.appendChild(summary);
    const children = el("div", "children");
    for (const [childKey, child] of entries) children.appendChild(node(child, Array.isArray(value) ? null : childKey, open, depth + 1));
    details.appendChild(children);
    return details;
  }
  const line = el("div", "leaf");
  line.appendChild(label());
  const kind = value === null ? "null" : typeof value;
  line.appendChild(el("span", "v " + kind, kind === "string" ? JSON.stringify(value) : String(value)));
  return line;
}

// --- replay ----------------------------------------------------------------------------------------------
async function doReplay(exchange, to, body) {
  const request = { to: to || null };
  if (body !== null) request.body = body;
  try {
    const result = await api(`/api/exchanges/${encodeURIComponent(exchange.id)}/replay`, { method: "POST", body: request });
    const delivery = result.delivery;
    // A replay nothing answered has no verdict: only what failed.
    toast(delivery.status === null ? `Replay to ${delivery.url} got no answer: ${delivery.error}` : `Replayed to ${delivery.url}: HTTP ${delivery.status}${delivery.verdict ? " · " + delivery.verdict.toUpperCase() : ""}`);
    if (result.exchange) {
      addLive(result.exchange);
      openExchange(result.exchange.id);
    }
    return true;
  } catch (error) {
    toast(`Replay failed: ${error.message}${error.hint ? " " + error.hint : ""}`);
    return false;
  }
}

function openEditor(exchange) {
  const dialog = $("edit-dialog");
  $("edit-of").textContent = exchange.id;
  $("edit-to").value = "";
  $("edit-to").placeholder = exchange.forwarded_to || (state.session.local_url ? "this listener" : "a URL");
  $("edit-body").value = typeof exchange.body === "string" ? exchange.body : JSON.stringify(exchange.body, null, 2);
  validateEditor();
  dialog.dataset.id = exchange.id;
  dialog.showModal();
  $("edit-body").focus();
}

function validateEditor() {
  const box = $("edit-validity");
  try {
    JSON.parse($("edit-body").value);
    box.textContent = "Valid JSON";
    box.className = "validity ok";
    $("edit-submit").disabled = false;
    return true;
  } catch (error) {
    box.textContent = error.message;
    box.className = "validity bad";
    $("edit-submit").disabled = true;
    return false;
  }
}

$("edit-body").addEventListener("input", validateEditor);
$("edit-cancel").addEventListener("click", () => $("edit-dialog").close());
$("edit-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!validateEditor()) return;
  const dialog = $("edit-dialog");
  const ok = await doReplay({ id: dialog.dataset.id }, $("edit-to").value.trim(), JSON.parse($("edit-body").value));
  if (ok) dialog.close();
});

// --- send --------------------------------------------------------------------------------------------------
let catalogLoaded = false;

async function openSend() {
  const dialog = $("send-dialog");
  if (!catalogLoaded) {
    try {
      const { payloads } = await api("/api/catalog");
      const select = $("send-trigger");
      const groups = new Map();
      for (const payload of payloads) {
        const label = `${payload.family} (${payload.generation})`;
        if (!groups.has(label)) groups.set(label, el("optgroup"));
        const group = groups.get(label);
        group.label = label;
        const option = el("option", null, payload.trigger);
        option.value = `${payload.generation}/${payload.trigger}`;
        option.title = payload.description;
        group.appendChild(option);
      }
      select.replaceChildren(...groups.values());
      select.value = "legacy/before_message";
      catalogLoaded = true;
    } catch (error) {
      toast(`Could not load the catalog: ${error.message}`);
      return;
    }
  }
  $("send-to").placeholder = state.session.webhook_url ? "this listener" : "http://localhost:8000/webhook";
  $("send-result").replaceChildren();
  dialog.showModal();
}

$("send-button").addEventListener("click", openSend);
$("send-cancel").addEventListener("click", () => $("send-dialog").close());
$("send-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const [generation, trigger] = $("send-trigger").value.split("/");
  const options = { legacy: generation === "legacy" };
  for (const name of ["text", "sender", "receiver", "group"]) {
    const value = $("send-" + name).value.trim();
    if (value) options[name] = value;
  }
  options.sets = $("send-sets").value.split("\n").map((line) => line.trim()).filter(Boolean);
  const result = $("send-result");
  result.replaceChildren(el("span", "muted", "Sending…"));
  try {
    const answer = await api("/api/send", { method: "POST", body: { trigger, to: $("send-to").value.trim() || null, options } });
    const d = answer.delivery;
    const line = el("div", "request-line mono");
    if (d.status === null) {
      // Nothing answered: no answer to show, and no verdict to give (CometChat would retry; see `send`).
      line.append(el("span", "s0", "No answer"), el("span", "muted", ` · ${d.url}`));
      result.replaceChildren(line, el("p", "warn", d.error || "The endpoint did not answer."),
        el("p", "muted small", "Is your endpoint running, and is this its URL?"));
      return;
    }
    line.append(el("span", "s" + String(d.status)[0], `HTTP ${d.status}`), el("span", "muted", `  ${formatMs(d.latency_ms)} · ${d.url}`));
    if (d.verdict) line.appendChild(el("span", "badge " + d.verdict, d.verdict.toUpperCase()));
    result.replaceChildren(line, tree(d.response, true));
    if (answer.exchange) addLive(answer.exchange);
  } catch (error) {
    result.replaceChildren(el("span", "warn", `${error.message}${error.hint ? " " + error.hint : ""}`));
  }
});

// --- answers (rules) -----------------------------------------------------------------------------------------
async function loadRules() {
  try {
    const rules = await api("/api/rules");
    const button = $("rules-button");
    if (rules.forwarded_to) {  // the app answers before_message: a canned answer switched here would change nothing
      button.textContent = "Answers: YOUR APP";
      button.className = "chip app";
      button.title = `before_message is forwarded to ${rules.forwarded_to}: your app answers it`;
      return rules;
    }
    if (!rules.editable) {
      button.hidden = true;
      return rules;
    }
    button.textContent = `Answers: ${rules.respond.toUpperCase()}`;
    button.className = "chip " + rules.respond;
    button.title = `before_message: ${rules.answering}`;
    return rules;
  } catch {
    return null;
  }
}

$("rules-button").addEventListener("click", async () => {
  const rules = await loadRules();
  if (!rules || (!rules.editable && !rules.forwarded_to)) return;
  const locked = Boolean(rules.forwarded_to);
  $("rules-now").textContent = locked
    ? `before_message is forwarded to ${rules.forwarded_to}: your app answers it, so a canned answer here would change nothing. Change your app's answer; or forward only the other triggers (--route TRIGGER=URL instead of --forward-to), and switch it here.`
    : `Now: ${rules.answering}` + (rules.forwarding ? ". Forwarded deliveries get your app's answer; this is the answer for the rest." : "") + (rules.rules ? ` ${rules.rules} rule(s) and --drop-if still come first.` : "");
  $("rules-choice").disabled = locked;
  $("rules-inject").disabled = locked;
  $("rules-submit").disabled = locked;
  for (const input of document.querySelectorAll('input[name="respond"]')) input.checked = !locked && input.value === rules.respond;
  if (rules.respond === "inject") $("rules-inject").value = JSON.stringify(rules.respond_body, null, 2);
  $("rules-validity").textContent = "";
  $("rules-dialog").showModal();
});
$("rules-cancel").addEventListener("click", () => $("rules-dialog").close());
$("rules-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const chosen = document.querySelector('input[name="respond"]:checked');
  if (!chosen) return;
  let respond = chosen.value;
  if (respond === "inject") {
    try {
      respond = JSON.parse($("rules-inject").value);  // the object itself: the API injects a JSON object as it is
    } catch (error) {
      $("rules-validity").textContent = error.message;
      $("rules-validity").className = "validity bad";
      return;
    }
  }
  try {
    await api("/api/rules", { method: "PUT", body: { respond } });
    await loadRules();
    $("rules-dialog").close();
    toast(`The next before_message gets ${chosen.value.toUpperCase()}.`);
  } catch (error) {
    $("rules-validity").textContent = `${error.message}${error.hint ? " " + error.hint : ""}`;
    $("rules-validity").className = "validity bad";
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

start();
