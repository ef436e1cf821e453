// comethook inspector: the Send panel (a canned payload to any URL) and the Answers panel (the rules).
// Loaded after app.js as a classic script, sharing its globals (state, api, el, $). Everything from the network
// is written with textContent, never as HTML.

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
