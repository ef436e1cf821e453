"""`comethook trigger`'s engine: run a verb's REST calls, remember the last message, and wait for the
deliveries a call caused in the history of a `comethook listen` running on this machine."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from comethook_cli.cometchat import rest
from comethook_cli.cometchat.rest import RestCall
from comethook_cli.cometchat.scenarios import Call, Correlation, calls_for
from comethook_cli.engine.history.files import default_path
from comethook_cli.engine.history.reader import History
from comethook_cli.engine.home import home, make_private_directory, write_private
from comethook_cli.engine.rest_client import RestClient
from comethook_cli.engine.restvalues import TriggerExpectation
from comethook_cli.errors import AssertionFailed, ComethookError, UnreachableError
from comethook_cli.models import Exchange

#: How often the history is read while waiting.
POLL_S = 0.2


@dataclass(frozen=True)
class Outcome:
    """What one verb did: its calls and answers, what it should fire, and how to recognise that."""

    verb: str
    calls: tuple[RestCall, ...]
    #: The webhooks to expect, per generation (empty when nothing fires, e.g. setup, or the call failed).
    current: tuple[str, ...]
    legacy: tuple[str, ...]
    correlation: Correlation
    #: The message id, guid or uid later steps refer to as `${steps.ID.id}`.
    main_id: str | None
    #: A webhook or an extension dropped the message (ERR_BLOCKED_BY_WEBHOOK / _EXTENSION).
    dropped: bool = False
    #: The call that failed (neither ok, nor "already there" for setup, nor dropped).
    failed: RestCall | None = None
    #: What arrives instead of `current` when moderation blocks the message (a 2xx, then moderation_engine_blocked).
    blocked: tuple[str, ...] = ()

    @property
    def answer(self) -> Any:
        """The last call's answer body."""
        return self.calls[-1].body if self.calls else None


def _main_id(call: Call, answer: RestCall) -> str | None:
    if call.action in rest.SDK_ACTIONS:  # emulate's stand-ins answer {"data": {"id": the message, guid, uid or session}}
        found = answer.body.get("data", {}).get("id") if isinstance(answer.body, dict) else None
        return str(found) if isinstance(found, str) else None
    if call.action in ("send_message", "edit_message", "delete_message", "add_reaction", "remove_reaction", "pin_message",
                       "unpin_message"):  # fmt: skip
        return rest.message_id(answer.body) or call.params.get("id")
    if call.correlation.guid:
        return call.correlation.guid
    if call.correlation.users:
        return call.correlation.users[0]
    return None


async def perform(client: RestClient, verb: str, args: dict[str, Any], on_call: Callable[[RestCall, Call], None]) -> Outcome:
    """Make a verb's calls in order (stopping at a failure); `on_call` sees each call as it is answered."""
    planned = calls_for(verb, args)
    made: list[RestCall] = []
    main_id: str | None = None
    correlation = Correlation()
    current: tuple[str, ...] = ()
    legacy: tuple[str, ...] = ()
    blocked: tuple[str, ...] = ()
    for call in planned:
        answer = await client.call(call.action, call.params, call.body, call.on_behalf_of)
        made.append(answer)
        on_call(answer, call)
        reused = answer.error is not None and answer.error.code in call.reuse
        if answer.dropped:  # by before_message (its delivery arrived) or by an extension (nothing to wait for)
            hook = ("before_message",) if answer.error and answer.error.code == "ERR_BLOCKED_BY_WEBHOOK" else ()
            return Outcome(verb, tuple(made), (), hook, call.correlation, None, dropped=True)
        if not answer.ok and not reused:
            return Outcome(verb, tuple(made), (), (), call.correlation, None, failed=answer)
        main_id = _main_id(call, answer) or main_id
        correlation = call.correlation
        if answer.ok and call.action in rest.SDK_ACTIONS:
            current, legacy = rest.sdk_fired(answer.body)
        elif answer.ok and verb != "setup":
            current = rest.expected_triggers(call.action, legacy=False, mentions=call.mentions)
            legacy = rest.expected_triggers(call.action, legacy=True)
            if call.action == "send_message":
                current, blocked = moderated(current, answer.body)
    if verb == "message" and main_id:
        correlation = Correlation(
            (main_id,), correlation.muid, None, (), correlation.sender, correlation.receiver, correlation.text
        )
    if verb == "call" and main_id:
        correlation = Correlation(session=main_id)
    return Outcome(verb, tuple(made), current, legacy, correlation, main_id, blocked=blocked)


def not_blocked(outcome: Outcome, arrived: Arrived | None) -> str | None:
    """None when moderation blocked the message (moderation_engine_blocked arrived, or the REST answer was the
    docs' ERR_BLOCKED_BY_EXTENSION); else what happened instead, as people read it."""
    names = {e.info.trigger for e in arrived.exchanges} if arrived else set()
    if (outcome.dropped and not outcome.legacy) or "moderation_engine_blocked" in names:
        return None
    if outcome.dropped:
        return "dropped by a before_message webhook"
    if "moderation_engine_approved" in names:
        return "approved (moderation_engine_approved arrived)"
    return "delivered without moderation" if "message_sent" in names else "not judged: no moderation webhook arrived"


def moderated(current: tuple[str, ...], answer: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A send's expected triggers under moderation, and what arrives instead when it blocks the message.

    A message held for moderation comes back `data.moderation.status: "pending"` (CometChat's SDK docs; for REST an
    inference): then moderation_engine_approved joins message_sent, or moderation_engine_blocked replaces them (the
    webhooks sheet §10). Without that status, moderation may still be on (a REST answer may not say so): a block is
    still recognised, and message_sent is what is expected."""
    status = rest.moderation_status(answer)
    if status == "pending":
        current = (*current, "moderation_engine_approved")
    return current, ("moderation_engine_blocked",)


# --- the last message sent ---------------------------------------------------------------------------------


def last_path() -> Path:
    """Where `trigger` remembers the last message it sent (for --last)."""
    return home() / "trigger-last.json"


def remember(message_id: str, api_base: str) -> None:
    """Keep the id of the message just sent (ids only: nothing secret)."""
    path = last_path()
    try:
        make_private_directory(path.parent)  # COMETHOOK_HOME, when `trigger` runs before any `listen`: 0700
        write_private(path, json.dumps({"message": message_id, "api_base": api_base}))
    except OSError:
        pass  # --last is a convenience: failing to keep it must not fail the call that worked


def last_message(api_base: str) -> str | None:
    """The id of the last message `trigger` sent to this API (None when there is none)."""
    try:
        saved = json.loads(last_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(saved, dict) and saved.get("api_base") == api_base and isinstance(saved.get("message"), str):
        return str(saved["message"])
    return None


# --- waiting for the deliveries ----------------------------------------------------------------------------


@dataclass
class Watch:
    """The history of a running `listen`, read from where it stood before the call."""

    history: History
    seq: int
    path: Path = field(default_factory=default_path)

    @classmethod
    def open(cls, path: Path | None = None) -> Watch:
        """Open the history (ComethookError when there is none: no `listen` ever ran here) and note where it ends."""
        history = History(path)
        return cls(history, history.head(), history.path)

    def close(self) -> None:
        """Close the database."""
        self.history.close()


@dataclass(frozen=True)
class Arrived:
    """What a wait found: the deliveries this call caused, and the triggers still missing."""

    exchanges: tuple[Exchange, ...]
    missing: tuple[str, ...]
    generation: str


def _complete(seen: list[Exchange], expected: tuple[str, ...]) -> bool:
    names = {e.info.trigger for e in seen}
    return bool(expected) and all(name in names for name in expected)


async def wait_for(
    watch: Watch, outcome: Outcome, timeout: float, on_exchange: Callable[[Exchange], None] | None = None
) -> Arrived:
    """Wait up to `timeout` s for the deliveries `outcome` should cause (either generation's set, whichever arrives)."""
    from comethook_cli import jsonbody

    seen: list[Exchange] = []
    deadline = time.monotonic() + timeout
    while True:
        fresh, watch.seq = await asyncio.to_thread(watch.history.since, watch.seq)
        for exchange in fresh:
            try:
                payload = exchange.payload if exchange.payload is not None else jsonbody.parse(exchange.body)
            except jsonbody.JsonBodyError:
                continue
            if outcome.correlation.matches(payload):
                seen.append(exchange)
                if on_exchange:
                    on_exchange(exchange)
        # A before_message the hook dropped is the end of the story: no after_message follows.
        legacy = ("before_message",) if any(e.verdict and e.verdict.kind == "drop" for e in seen) else outcome.legacy
        for generation, expected in (("current", outcome.current), ("legacy", legacy), ("blocked", outcome.blocked)):
            if _complete(seen, expected):
                return Arrived(tuple(seen), (), generation)
        if time.monotonic() >= deadline:
            names = {e.info.trigger for e in seen}
            uses_legacy = any(name in rest.ACTIONS["send_message"].legacy for name in names) or not outcome.current
            expected = legacy if uses_legacy else outcome.current
            return Arrived(tuple(seen), tuple(t for t in expected if t not in names), "legacy" if uses_legacy else "current")
        await asyncio.sleep(POLL_S)


# --- what a verb came to: its notes, the error of a failed call, what was expected -------------------------

NO_ANSWER = frozenset({"unreachable", "tls", "timeout"})
BASIS = {
    "D+L": "CometChat's docs describe this trigger and a third-party harness saw this REST call fire it live",
    "D": "CometChat's docs describe this trigger; that this REST call fires it is an inference",
    "I": "an inference: not documented, not seen live",
    "L": "not in CometChat's trigger list; a third-party harness saw this REST call fire it live",
}
#: Why `blocked` can only be told from the deliveries: the REST answer to a message moderation blocks is a 2xx.
BLOCKED_ARRIVES = "a message moderation blocks is answered 2xx, then moderation_engine_blocked arrives"


def notes(outcome: Outcome) -> list[str]:
    """What a verb's record says in words: the basis of each trigger mapping, and what is inferred."""
    notes: list[str] = []
    if any(call.action in rest.SDK_ACTIONS for call in outcome.calls):
        notes.append(rest.SDK_NOTE)
    if not (outcome.current or outcome.legacy):
        return notes
    for call in outcome.calls:
        spec = rest.ACTIONS[call.action or ""] if call.action in rest.ACTIONS else None
        if spec is None or not (spec.current or spec.legacy):
            continue
        if spec.basis in BASIS:
            notes.append(f"{call.method} {spec.path}: {BASIS[spec.basis]}.")
        if spec.note:
            notes.append(spec.note + ".")
    if outcome.dropped:
        notes.append(
            "ERR_BLOCKED_BY_WEBHOOK in a REST answer is inferred from CometChat's error guide, not documented for REST sends."
        )
    if outcome.current and outcome.legacy:
        notes.append("An app uses legacy or current webhooks (one or the other, set in the Dashboard); --wait accepts either.")
    if any(c.action == "send_message" for c in outcome.calls) and rest.injected(outcome.answer) is not None:
        notes.append(
            'The before_message answer in data.data.metadata["@injected"] of the REST answer is inferred, not documented.'
        )
    return notes


def call_error(call: RestCall) -> ComethookError:
    """The error (and exit code) for a failed call: 4 when nothing answered, else 1, always with a hint."""
    from comethook_cli.engine.rest_client import MAX_BACKOFF_S

    where = f"{call.method} {call.url}"
    detail = (call.failure_detail or "").rstrip(". ")  # each sentence below ends with its own period
    if call.failure in NO_ANSWER:
        hint = "Check the network, COMETCHAT_REGION and --api-base; raise --timeout for a slow answer."
        return UnreachableError(f"{where}: {detail}.", hint)
    if call.failure == "not_json":
        return ComethookError(f"{where}: {detail}.", "Is --api-base CometChat's REST API (…/v3) or `comethook emulate`?")
    if call.failure is not None:
        return ComethookError(f"{where}: {detail}.", "Try again; if it persists, check --api-base.")
    code = call.error.code if call.error else None
    # CometChat's messages end in a period; the sentence below adds its own.
    message = call.error.message.rstrip(". ") if call.error and call.error.message else "no error message"
    said = f"{code}: {message}" if code else message
    inferred = " (this code's use here is inferred)" if code in rest.INFERRED_CODES else ""
    if call.retry_after_s is not None:
        return ComethookError(
            f"{where} answered {call.status}, {said}{inferred}; its Retry-After asks to wait {_duration(call.retry_after_s)}, "
            f"longer than {'is left of --timeout' if call.retry_after_s <= MAX_BACKOFF_S else 'comethook waits'}.",
            f"Try again after that wait. comethook waits out a Retry-After of up to {MAX_BACKOFF_S:g} s within --timeout "
            "(the time for all of this command's REST calls together).",
        )
    return ComethookError(f"{where} answered {call.status}, {said}{inferred}.", rest.hint_for(code, call.status))


def _duration(seconds: float) -> str:
    """`2.5 s`, `90 s (1.5 minutes)`, `999999999 s (about 32 years)`: a Retry-After as a person reads it."""
    exact = f"{seconds:g} s" if seconds < 1e6 else f"{seconds:.0f} s"
    for unit, size in (("years", 365.25 * 86400), ("days", 86400.0), ("hours", 3600.0), ("minutes", 60.0)):
        if seconds >= 2 * size:
            return f"{exact} (about {seconds / size:.0f} {unit})"
    return exact


def judge(outcome: Outcome, arrived: Arrived | None, expected: TriggerExpectation | None, wait_timeout: float) -> None:
    """Raise for what was expected (3) or for deliveries that never came (4)."""
    # Without the deliveries, the REST answer tells only whether the message was dropped, not by whom.
    expect = TriggerExpectation.DROPPED if expected is TriggerExpectation.DROP and arrived is None else expected
    verdicts = [e.verdict.kind for e in arrived.exchanges if e.verdict] if arrived else []
    if expect == "dropped" and not (outcome.dropped or "drop" in verdicts):
        raise AssertionFailed("Expected the message to be dropped, but CometChat stored it.")
    if expect in ("pass", "inject", "drop") and arrived is not None and verdicts and expect not in verdicts:
        raise AssertionFailed(f"Expected before_message to be answered {expect}, got {', '.join(verdicts)}.")
    if expect in ("pass", "inject") and arrived is None:
        injected = rest.injected(outcome.answer)
        if outcome.dropped or (expect == "inject") != bool(injected):
            got = "dropped" if outcome.dropped else "inject" if injected else "pass"
            raise AssertionFailed(f"Expected {expect}, the REST answer says {got} (read from @injected, an inference).")
    if expect == "blocked" and (instead := not_blocked(outcome, arrived)) is not None:
        raise AssertionFailed(f"Expected moderation to block the message, but it was {instead}.")
    if expect == "ok" and outcome.dropped:
        raise AssertionFailed("Expected the call to succeed, but the message was dropped by a webhook.")
    if arrived is not None and arrived.missing:
        raise UnreachableError(
            f"Waited {wait_timeout:g} s: {', '.join(arrived.missing)} did not arrive in the history of `comethook listen`.",
            "Is `comethook listen` running here (history on), and is the app's webhook pointed at it with these triggers "
            "ticked? Deliveries can lag: raise --wait-timeout.",
        )
    if expect in ("pass", "inject", "drop") and arrived is not None and not verdicts:
        raise AssertionFailed(f"--expect {expect} needs a before_message delivery (legacy webhooks); none arrived for this call.")
