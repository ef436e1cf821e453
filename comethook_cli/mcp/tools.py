"""The operations behind `comethook mcp`'s tools: arguments parsed once (engine/values.py, the catalog's parsers),
the same engine calls as the CLI and the inspector, and results in the wire records' shapes (outputs/wire.py).

Nothing here knows MCP: server.py declares the tools (names, schemas, read-only or not) over these functions and
turns a ComethookError into a tool error. Secrets come only from named environment variables (`Secrets` remembers
each one read, so the server scrubs it from every result).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from comethook_cli.engine.config import CHECK_TRIGGERS
from comethook_cli.engine.values import BUILD_FIELDS
from comethook_cli.errors import ComethookError, UsageError
from comethook_cli.mcp.limits import Secrets
from comethook_cli.models import SECRET_HEADERS, iso_time
from comethook_cli.outputs import wire

#: The longest any one delivery may wait for its answer (seconds): a tool call must end.
MAX_TIMEOUT = 30.0
#: The most exchanges one history_list (or the recent-exchanges resource) returns.
MAX_LIST = 100
#: What the payload builder's overrides may name (send, show_payload): the flags of `send` of the same name.
OVERRIDES = BUILD_FIELDS


#: A body's changes as given: PATH=VALUE sets (paths that exist), PATH=VALUE adds (paths made), PATH unsets.
Changes = tuple[Sequence[str] | None, Sequence[str] | None, Sequence[str] | None]


def build_options(overrides: Mapping[str, str] | None, changes: Changes = (None, None, None)) -> Any:
    """The payload builder's options from overrides (`send`'s flags by name) and the changes (engine/values.py)."""
    from comethook_cli.engine import values

    sets, adds, unsets = changes
    return values.build_options(overrides or {}, sets or (), adds or (), unsets or ())


#: The variables a tool may read a secret from without being told: comethook's own. Any other must be named in
#: COMETHOOK_MCP_SECRETS (comma-separated) in the server's environment, or start with COMETHOOK_SECRET_: an agent
#: misled by a delivery's text must not be able to send AWS_SECRET_ACCESS_KEY to a host of its choosing.
OWN_SECRETS = frozenset({"COMETCHAT_API_KEY", "COMETHOOK_BASIC_AUTH"})


def may_read(name: str) -> bool:
    """Whether a tool may read the environment variable `name` as a secret (see OWN_SECRETS)."""
    named = {part.strip() for part in os.environ.get("COMETHOOK_MCP_SECRETS", "").split(",") if part.strip()}
    return name in OWN_SECRETS or name in named or name.startswith("COMETHOOK_SECRET_")


def secret_from(name: str, secrets: Secrets, what: str) -> str:
    """The value of the environment variable `name` (a UsageError when it is unset or empty, or not one a tool may
    read), remembered as a secret."""
    if not may_read(name):
        raise UsageError(
            f"The environment variable {name!r} is not one this server lets a tool read.",
            "Name it in COMETHOOK_MCP_SECRETS (comma-separated) in the server's environment (the mcp.json `env` block), "
            "or give it a COMETHOOK_SECRET_ name; COMETCHAT_API_KEY and COMETHOOK_BASIC_AUTH are always allowed.",
        )
    value = os.environ.get(name, "")
    if not value:
        raise UsageError(
            f"The environment variable {name!r} ({what}) is not set.",
            f"Set {name} in the environment of `comethook mcp` (the mcp.json `env` block); secrets are never tool arguments.",
        )
    return secrets.add(value)


def request_headers(
    headers: Mapping[str, str] | None, header_env: Mapping[str, str] | None, basic_auth_env: str | None, secrets: Secrets
) -> tuple[dict[str, str], str | None]:
    """(plain headers, Basic auth credentials): headers given as arguments never carry a secret (those come from
    header_env: header name → environment variable)."""
    from comethook_cli.engine import values

    plain: dict[str, str] = {}
    for name, value in (headers or {}).items():
        parsed_name, parsed_value = values.header(f"{name}: {value}")
        if parsed_name.lower() in SECRET_HEADERS:
            raise UsageError(
                f"The header {parsed_name!r} carries a credential, and tools take no secrets as arguments.",
                f'Put it in an environment variable and pass header_env={{"{parsed_name}": "VARIABLE"}} '
                "(Basic auth: basic_auth_env).",
            )
        plain[parsed_name] = parsed_value
    for name, variable in (header_env or {}).items():
        parsed_name, _ = values.header(f"{name}: x")
        plain[parsed_name] = secret_from(variable, secrets, f"the {parsed_name} header")
    credentials = secret_from(basic_auth_env, secrets, "Basic auth USER:PASS") if basic_auth_env else None
    if credentials is not None and ":" not in credentials:
        raise UsageError(f"{basic_auth_env} does not hold USER:PASS.", "Set it to the user and password, joined by a colon.")
    return plain, credentials


def endpoint(to: str) -> str:
    """The target URL, normalized; one with a password in it is refused (tools take no secrets as arguments)."""
    from comethook_cli.engine.urls import normalize_url, take_credentials

    url = normalize_url(to)
    if take_credentials(url)[1] is not None:
        raise UsageError("The URL holds credentials (user:password@).", "Drop them and pass basic_auth_env instead.")
    return url


# --- reading: the catalog and the verdict -------------------------------------------------------------------


def list_payloads(generation: str | None) -> dict[str, Any]:
    """Every canned payload as a `payload` record (one generation's, when asked)."""
    from comethook_cli.cometchat.payloads import catalog

    chosen = [t for t in catalog() if generation is None or t.generation == generation]
    return {"payloads": [wire.Payload(t).to_json() for t in chosen]}


def show_payload(trigger: str, generation: str | None, overrides: Mapping[str, str] | None, changes: Changes) -> dict[str, Any]:
    """The exact body `send` would send for a trigger (its `payload` record, the body and its live-vs-docs note)."""
    from comethook_cli.cometchat.payloads import build, find_template

    template = find_template(trigger, generation == "legacy")
    return {**wire.Payload(template).to_json(), "note": template.note, "body": build(template, build_options(overrides, changes))}


def explain_answer(answer: Any, answer_text: str | None, status: int, request: Any) -> dict[str, Any]:
    """What CometChat does with a before_message answer (the `explanation` record), judged by cometchat.verdict."""
    from comethook_cli.cometchat.payloads import BuildOptions, build, encode, find_template
    from comethook_cli.cometchat.verdict import judge

    if answer_text is not None and answer is not None:
        raise UsageError("Both answer and answer_text.", "Give the answer as JSON (answer) or as its exact text (answer_text).")
    if answer_text is None and answer is None:
        raise UsageError(
            "No answer to explain.", 'Give answer (e.g. {"status": "ok"}), or answer_text for one that may not be JSON.'
        )
    body = answer_text.encode("utf-8") if answer_text is not None else encode(answer)
    delivery = request if request is not None else build(find_template("before_message", legacy=True), BuildOptions())
    return wire.Explanation(judge(delivery, status, body)).to_json()


# --- sending -----------------------------------------------------------------------------------------------


async def send(
    to: str,
    trigger: str | None,
    body: Any,
    build: tuple[Mapping[str, str] | None, Changes],
    auth: tuple[Mapping[str, str] | None, Mapping[str, str] | None, str | None],
    expect: tuple[str | None, Sequence[str], float | None],
    timeout: float,
    secrets: Secrets,
) -> dict[str, Any]:
    """One delivery (a canned trigger, or `body`), its answer, its verdict and the assertions (engine.sender.run)."""
    from comethook_cli.cometchat.payloads import Bodies, IdSource, encode, find_template
    from comethook_cli.cometchat.payloads.paths import apply as apply_overrides
    from comethook_cli.engine import runs, sender, values
    from comethook_cli.engine.auth import basic_auth_header

    url = endpoint(to)
    headers, credentials = request_headers(*auth, secrets)
    if credentials:
        headers["Authorization"] = basic_auth_header(credentials)
    expectations = values.expectations(*expect)
    if body is not None:
        options = build_options(*build)
        apply_overrides(body, options.sets, options.adds, options.unsets)
        said = body.get("trigger") if isinstance(body, dict) else None
        name = trigger or (said if isinstance(said, str) else None)
        fixed = sender.Outgoing(encode(body), body, name)
        make = lambda: fixed  # noqa: E731 - the plan asks for a maker of bodies; this one sends the same body
    elif trigger:
        template = find_template(trigger)
        bodies = Bodies(template, build_options(*build), IdSource())
        make = lambda: sender.Outgoing(bodies.next(), trigger=template.trigger)  # noqa: E731
    else:
        raise UsageError("No trigger and no body.", "Name a trigger (list_payloads lists them) or give body.")
    plan = sender.SendPlan(url, make, headers, min(timeout, MAX_TIMEOUT), 1, 1)
    deliveries, _ = await sender.run(plan, lambda delivery: None)
    failures = runs.check_expectations(deliveries, expectations)
    asserted = [*([f"expect {expectations.verdict}"] if expectations.verdict else []), *(f"expect_json {e}" for e in expect[1])]
    if expectations.max_latency_ms is not None:
        asserted.append(f"max_latency_ms {expectations.max_latency_ms:g}")
    delivery = deliveries[0]
    return {
        "delivery": wire.DeliveryRecord(delivery).to_json(),
        "explanation": wire.Explanation(delivery.verdict).to_json() if delivery.verdict else None,
        "assertion": wire.Assertion(not failures, tuple(asserted), tuple(failures)).to_json() if asserted else None,
    }


async def check(
    to: str, triggers: str | None, volatile: Sequence[str], basic_auth_env: str | None, timeout: float, secrets: Secrets
) -> dict[str, Any]:
    """The conformance suite (engine.checks) against one endpoint: every `check` record, the `summary`, and the
    failures and warnings grouped by cause (checks that failed for the same reason, together)."""
    from comethook_cli.engine import checks, values
    from comethook_cli.engine.urls import redact_url

    url = endpoint(to)
    _, credentials = request_headers(None, None, basic_auth_env, secrets)
    templates = values.triggers(triggers or ",".join(CHECK_TRIGGERS))
    paths = tuple(values.volatile(path) for path in volatile)
    done = await checks.run_checks(url, templates, credentials, min(timeout, MAX_TIMEOUT), volatile=paths)
    causes: dict[tuple[str, str], list[str]] = {}
    for result in done.results:
        if result.status != "pass":
            causes.setdefault((result.status, result.detail), []).append(result.name)
    return {
        "url": redact_url(url),
        "reached": done.reached,
        "wants_auth": done.wants_auth,
        "summary": wire.CheckSummary(*checks.summary(done.results), done.seconds).to_json(),
        "causes": [{"status": status, "cause": detail, "checks": names} for (status, detail), names in causes.items()],
        "results": [wire.Check(result).to_json() for result in done.results],
    }


# --- the history of `listen` --------------------------------------------------------------------------------


def history_list(
    trigger: Sequence[str] | None, verdict: str | None, status: str | None, q: str | None, limit: int, cursor: int | None
) -> dict[str, Any]:
    """A page of stored exchanges, newest first (`event` records), and the cursor of the next (older) page."""
    from comethook_cli.engine.history.reader import History

    status_class = int(status[0]) if status else None
    with History() as history:
        page, after = history.page(cursor, max(1, min(limit, MAX_LIST)), list(trigger or ()), verdict, q, status_class)
        return {"exchanges": [wire.Event(e).to_json() for e in page], "next": after, "history": str(history.path)}


def history_show(exchange_id: str) -> dict[str, Any]:
    """One stored exchange in full: its `event` record with the body exactly as stored (`raw`)."""
    from comethook_cli.engine.history.reader import History

    with History() as history:
        return {"exchange": wire.Event(history.get(exchange_id), raw=True).to_json()}


async def replay(
    exchange_id: str,
    to: str | None,
    body: Any,
    changes: Changes,
    auth: tuple[Mapping[str, str] | None, Mapping[str, str] | None, str | None],
    timeout: float,
    secrets: Secrets,
) -> dict[str, Any]:
    """Deliver a stored exchange again (engine.replay), changed by a new body and the changes; by default to
    where it was forwarded, else to the running listen."""
    from comethook_cli.cometchat.payloads import encode
    from comethook_cli.engine import replay as replaying
    from comethook_cli.engine import runtime
    from comethook_cli.engine.auth import basic_auth_header
    from comethook_cli.engine.history.reader import History

    headers, credentials = request_headers(*auth, secrets)
    if credentials:
        headers["Authorization"] = basic_auth_header(credentials)
    parsed = build_options(None, changes)
    edits = replaying.Edits(encode(body) if body is not None else None, parsed.sets, parsed.adds, parsed.unsets)
    with History() as history:
        original = await history.aget(exchange_id)
        running, stale = runtime.running()
        listener = running.local_url if running is not None and not stale else None
        target = endpoint(to) if to else replaying.target_of(original, None, listener)
        if target is None:
            raise UsageError(f"{original.id} was not forwarded anywhere, and no listen runs here.", "Pass to: a URL.")
        delivery = await replaying.replay(
            original.id, target, edits, history=history, headers=headers, timeout=min(timeout, MAX_TIMEOUT)
        )
    return {"replay_of": original.id, "delivery": wire.DeliveryRecord(delivery).to_json()}


def listen_status() -> dict[str, Any]:
    """Whether a `listen` runs on this history home (engine/runtime.py), where, and its tunnel health."""
    from comethook_cli.engine import runtime
    from comethook_cli.engine.history.files import default_path
    from comethook_cli.engine.home import home

    found, stale = runtime.running()
    document: dict[str, Any] = {
        "running": found is not None and not stale,
        "home": str(home()),
        "history_path": str(default_path()),
        "history_exists": default_path().exists(),
    }
    if found is None:
        document["hint"] = "Start `comethook listen` (in a terminal of its own) to receive deliveries here."
        return document
    if stale:
        document["hint"] = f"A listen (pid {found.pid}) ran here and ended without stopping cleanly; start it again."
        return document
    return {
        **document,
        "ready": wire.Ready(found.local_url, found.public_url, found.webhook_url, found.inspector_url).to_json(),
        "pid": found.pid,
        "history": found.history,
        "started_at": iso_time(found.started_at),
        "health": found.health,
    }


# --- trigger ------------------------------------------------------------------------------------------------


async def trigger(
    verb: str,
    args: Mapping[str, Any],
    api_base: str | None,
    wait: bool,
    wait_timeout: float,
    expect: str | None,
    secrets: Secrets,
) -> dict[str, Any]:
    """Make CometChat (or `emulate`) fire webhooks through its REST API (engine.trigger); with `wait`, the deliveries
    the call caused in the history of the running listen. The REST key comes from COMETCHAT_API_KEY only. Just over
    60 lines: the checks of an agent's arguments (where the key may go) come before the call, in the order they apply."""
    from comethook_cli.cometchat import rest
    from comethook_cli.cometchat.scenarios import SDK_VERBS, sdk_only
    from comethook_cli.engine import restvalues, values
    from comethook_cli.engine import trigger as triggering
    from comethook_cli.engine.rest_client import RestClient

    expected = restvalues.trigger_expectation(expect)
    if expected is not None and expected.needs_deliveries and not wait:  # a combination of arguments: said here
        why = f": {triggering.BLOCKED_ARRIVES}" if expected == "blocked" else ""
        raise UsageError(f"expect={str(expected)!r} needs wait=true{why}.", "Pass wait=true (with `comethook listen` running).")
    if verb in SDK_VERBS and not api_base:
        raise sdk_only(verb, None)
    if api_base:
        from comethook_cli.engine.trust import is_loopback_url

        if not is_loopback_url(api_base):  # the key would go to a host an agent chose
            raise UsageError(
                f"api_base {api_base!r} is not on this machine: it is for `comethook emulate`, and the REST key goes with "
                "every call.",
                "For a real app, leave api_base out: COMETCHAT_APP_ID and COMETCHAT_REGION in the server's environment "
                "name its host.",
            )
        base = api_base.rstrip("/")
    elif os.environ.get("COMETCHAT_APP_ID"):
        base = rest.api_base(os.environ["COMETCHAT_APP_ID"], values.region(os.environ.get("COMETCHAT_REGION") or "us"))
    else:
        raise UsageError(
            "No CometChat app to call.",
            "Set COMETCHAT_APP_ID and COMETCHAT_REGION in the server's environment, or pass api_base (`comethook emulate`).",
        )
    key = secret_from("COMETCHAT_API_KEY", secrets, "the app's REST API key")
    calls: list[dict[str, Any]] = []
    watch = triggering.Watch.open() if wait else None
    try:
        async with RestClient(base, key, MAX_TIMEOUT) as client:
            outcome = await triggering.perform(
                client, verb, dict(args), lambda call, _: calls.append(wire.RestCallRecord(call).to_json())
            )
            if outcome.failed is not None:
                raise triggering.call_error(outcome.failed)
            arrived = None
            if watch is not None and (outcome.current or outcome.legacy):
                arrived = await triggering.wait_for(watch, outcome, min(wait_timeout, MAX_TIMEOUT))
        record = wire.trigger_record(verb, outcome, arrived).to_json()
        failure = None
        try:
            triggering.judge(outcome, arrived, expected, wait_timeout)
        except ComethookError as error:  # the expectation's answer is part of the result, not a failed call
            failure = {"message": error.message, "exit_code": int(error.exit_code), "hint": error.hint}
        return {"trigger": record, "calls": calls, "expectation_failed": failure}
    finally:
        if watch is not None:
            watch.close()
