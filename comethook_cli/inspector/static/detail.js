// comethook inspector: the detail pane (an exchange, its answer and verdict, a JSON tree) and replay.
// Loaded after app.js as a classic script, sharing its globals (state, api, el, $). Everything from the network
// is written with textContent, never as HTML.

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
