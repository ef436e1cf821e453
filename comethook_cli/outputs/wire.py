"""The wire format: every NDJSON record comethook writes, as a typed model, and the one strict encoder.

`listen --json`, `send --json`, `check --json`, `history … --json`, `payloads list --json` and the
inspector's API and event stream all speak these shapes. `encode()` is the only way a record
becomes text: compact, strict (`allow_nan=False`: `NaN` never leaves comethook, since JSON.parse
refuses it), UTF-8 kept readable, and with DEL, C1 and bidi controls and lone surrogates written as
`\\u` escapes so even a raw `--json` stream is safe on a terminal. No rich here.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from comethook_cli import speedups
from comethook_cli.models import Delivery, Exchange, Health, Rejection, Verdict, iso_time, parse_body, without_secrets

if TYPE_CHECKING:
    from comethook_cli.cometchat.payloads import Template
    from comethook_cli.cometchat.rest import RestCall
    from comethook_cli.engine.checks import CheckResult
    from comethook_cli.engine.evidence import Evidence
    from comethook_cli.engine.runs import RetryReport, Summary
    from comethook_cli.engine.trigger import Arrived, Outcome

# What json.dumps(ensure_ascii=False) passes raw and a terminal must never receive: DEL, C1 controls,
# the bidi controls that reorder text, the line/paragraph separators, and lone surrogates (which
# UTF-8 cannot even encode). json.dumps already escapes everything below 0x20.
INVISIBLE = "\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff"
_UNSAFE_JSON = re.compile(f"[{INVISIBLE}]")


def _json_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def json_safe(encoded: str) -> str:
    """JSON text (from json.dumps, or JSON that parsed) with DEL, C1, bidi controls and lone surrogates
    written as \\u escapes: the same value, still valid JSON, and safe to print on a terminal."""
    if encoded.isascii() and "\x7f" not in encoded:  # two scans in C: ASCII text (most bodies) needs no regex
        return encoded
    return _UNSAFE_JSON.sub(_json_escape, encoded)


def dumps(document: Any) -> str:
    """Compact strict JSON for one line (non-ASCII kept readable, terminal controls escaped). A stray
    non-finite float (NaN, Infinity), which JSON.parse refuses, becomes null rather than breaking the line."""
    fast = speedups.dumpb(document)
    if fast is not None:
        return json_safe(fast.decode("utf-8"))
    try:
        text = json.dumps(document, ensure_ascii=False, separators=(",", ":"), default=str, allow_nan=False)
    except ValueError:
        text = json.dumps(_finite(document), ensure_ascii=False, separators=(",", ":"), default=str, allow_nan=False)
    return json_safe(text)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


#: `Event._document`'s default: the body is left out, to be spliced in as the text that arrived.
_SPLICED: Any = object()


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


class Record:
    """A line of the wire format: `type` names it, `to_json()` is its JSON object."""

    type: ClassVar[str]

    def to_json(self) -> dict[str, Any]:
        """The record as a JSON object (its `type` first)."""
        raise NotImplementedError


@dataclass(frozen=True)
class Ready(Record):
    """`listen` is serving: where, and what to paste in the CometChat Dashboard."""

    type: ClassVar[str] = "ready"
    local_url: str
    public_url: str | None
    webhook_url: str
    #: Where the inspector page is (None with --no-inspector).
    inspector_url: str | None = None

    def to_json(self) -> dict[str, Any]:
        """{"type": "ready", "local_url", "public_url", "webhook_url", "inspector_url"}."""
        return {"type": self.type, "local_url": self.local_url, "public_url": self.public_url, "webhook_url": self.webhook_url,
                "inspector_url": self.inspector_url}  # fmt: skip


@dataclass(frozen=True)
class Event(Record):
    """One exchange the listener received and answered (also each row of `history list --json`)."""

    type: ClassVar[str] = "event"
    exchange: Exchange
    #: `history show --json` adds the body exactly as stored, as text.
    raw: bool = False

    def to_json(self) -> dict[str, Any]:
        """The exchange as one JSON object (its credentials redacted, whatever the history kept: see without_secrets)."""
        e = without_secrets(self.exchange)
        document = self._document(e, e.payload if e.payload is not None else parse_body(e.body))
        if self.raw:
            document["raw"] = e.body.decode("utf-8", errors="replace")
        return document

    @staticmethod
    def _document(e: Exchange, body: Any = _SPLICED) -> dict[str, Any]:
        """The object's fields in their order; without `body` when it is spliced in as text after them (`encode`)."""
        verdict = e.verdict
        document: dict[str, Any] = {
            "type": "event",
            "id": e.id,
            "received_at": iso_time(e.received_at),
            "method": e.method,
            "path": f"{e.path}?{e.query}" if e.query else e.path,
            "headers": dict(e.headers),
            "trigger": e.info.trigger,
            "generation": e.info.generation,
            "summary": e.info.summary,
        }
        if body is not _SPLICED:
            document["body"] = body
        document["response"] = {"status": e.response_status, "body": e.answer}
        document["verdict"] = verdict.kind if verdict else None
        document["verdict_reason"] = verdict.reason if verdict else None
        document["latency_ms"] = round(e.latency_ms, 3)
        document["answered_by"] = e.answered_by
        document["forwarded_to"] = e.forwarded_to
        document["forward_error"] = e.forward_error
        return document

    def encode(self) -> str:
        """The line. The raw body is spliced in as it came when it is one line of UTF-8 JSON: re-encoding a
        large body costs more than all the rest. A `payload` on the exchange means the listener parsed these
        very bytes with the strict `jsonbody.parse` (it refuses NaN, Infinity and invalid UTF-8, which
        json.loads accepts or guesses), so the spliced text is valid JSON; `json_safe` escapes its controls.
        The line is kept on the exchange: the NDJSON view and the inspector's stream write the same one."""
        e = self.exchange
        if self.raw:
            return dumps(self.to_json())
        if e.event_line is not None:
            return e.event_line
        if e.payload is None or b"\n" in e.body or b"\r" in e.body or e.encoded:
            line = dumps(self.to_json())
        else:
            head = dumps(self._document(without_secrets(e)))
            line = f'{head[:-1]},"body":{json_safe(e.body.decode("utf-8"))}}}'
        object.__setattr__(e, "event_line", line)  # a cache on a frozen value: the line depends on nothing else
        return line


@dataclass(frozen=True)
class Rejected(Record):
    """A request the listener refused (4xx) without counting it as an event."""

    type: ClassVar[str] = "rejected"
    rejection: Rejection

    def to_json(self) -> dict[str, Any]:
        """{"type": "rejected", "status", "reason", "method", "path"}."""
        r = self.rejection
        return {"type": self.type, "status": r.status, "reason": r.reason, "method": r.method, "path": r.path}


@dataclass(frozen=True)
class TunnelHealth(Record):
    """The public URL stopped answering the probe sent through it (two failures in a row), or answers again."""

    type: ClassVar[str] = "tunnel"
    health: Health

    def to_json(self) -> dict[str, Any]:
        """{"type": "tunnel" (or "app"), "state": "up"|"down", "detail", "hint", "url"}."""
        h = self.health
        return {"type": self.type, "state": h.state, "detail": h.detail, "hint": h.hint, "url": h.url}


@dataclass(frozen=True)
class AppHealth(TunnelHealth):
    """Nothing listens at the app behind --forward-to any more, or something does again."""

    type: ClassVar[str] = "app"


def health_record(health: Health) -> TunnelHealth:
    """The `tunnel` or `app` record of a change of health."""
    return TunnelHealth(health) if health.subject == "tunnel" else AppHealth(health)


@dataclass(frozen=True)
class Error(Record):
    """The error that ended a command run with --json: what failed, its exit code and its hint (as on stderr).

    The error funnel writes it for every command; `listen` writes it before its last line, `stopped`."""

    type: ClassVar[str] = "error"
    message: str
    exit_code: int | None = None
    hint: str | None = None

    def to_json(self) -> dict[str, Any]:
        """{"type": "error", "message", "exit_code", "hint"}."""
        return {"type": self.type, "message": self.message, "exit_code": self.exit_code, "hint": self.hint}


@dataclass(frozen=True)
class Stopped(Record):
    """The last line of a `listen` that started: how many events it saw."""

    type: ClassVar[str] = "stopped"
    events: int

    def to_json(self) -> dict[str, Any]:
        """{"type": "stopped", "events"}."""
        return {"type": self.type, "events": self.events}


@dataclass(frozen=True)
class Overflow(Record):
    """The reader fell so far behind that lines were dropped (the events are still in the history)."""

    type: ClassVar[str] = "overflow"
    dropped: int

    def to_json(self) -> dict[str, Any]:
        """{"type": "overflow", "dropped"}."""
        return {"type": self.type, "dropped": self.dropped}


@dataclass(frozen=True)
class DeliveryRecord(Record):
    """One POST that `send`, `replay` or `check` made, and what came back."""

    type: ClassVar[str] = "delivery"
    delivery: Delivery

    def to_json(self) -> dict[str, Any]:
        """The delivery, its answer and (before_message) its verdict."""
        d = self.delivery
        return {
            "type": self.type,
            "trigger": d.trigger,
            "url": d.url,
            "attempt": d.attempt,
            "status": d.status,
            "latency_ms": _ms(d.latency_ms),
            "verdict": d.verdict.kind if d.verdict else None,
            "verdict_reason": d.verdict.reason if d.verdict else None,
            "response": d.response,
            "ok": d.ok,
            "error": d.error,
        }


@dataclass(frozen=True)
class Explanation(Record):
    """What CometChat does with one before_message answer (`comethook mcp`'s explain_answer and send).

    The verdict, what it means, the message's metadata after an INJECT, and whether the answer reads as an
    acknowledgement."""

    type: ClassVar[str] = "explanation"
    verdict: Verdict

    def to_json(self) -> dict[str, Any]:
        """{"type": "explanation", "verdict", "verdict_reason", "meaning", "webhook_id", "metadata", "acknowledgement"}."""
        from comethook_cli.cometchat.verdict import ACK_REASON, meaning

        v = self.verdict
        return {"type": self.type, "verdict": v.kind, "verdict_reason": v.reason, "meaning": meaning(v),
                "webhook_id": v.webhook_id, "metadata": v.metadata, "acknowledgement": v.reason == ACK_REASON}  # fmt: skip


@dataclass(frozen=True)
class Retries(Record):
    """Whether a delivery and its simulated retries got the same answer."""

    type: ClassVar[str] = "retries"
    report: RetryReport

    def to_json(self) -> dict[str, Any]:
        """{"type": "retries", "attempts", "consistent", "detail"}."""
        r = self.report
        return {"type": self.type, "attempts": r.attempts, "consistent": r.consistent, "detail": r.detail}


@dataclass(frozen=True)
class SendSummary(Record):
    """What a run of `send` deliveries came to."""

    type: ClassVar[str] = "summary"
    summary: Summary

    def to_json(self) -> dict[str, Any]:
        """Count, ok, failed, latency percentiles, rate."""
        s = self.summary
        return {"type": self.type, "count": s.count, "ok": s.ok, "failed": s.failed, "p50_ms": _ms(s.p50_ms),
                "p95_ms": _ms(s.p95_ms), "p99_ms": _ms(s.p99_ms), "rps": round(s.rps, 2)}  # fmt: skip


@dataclass(frozen=True)
class Check(Record):
    """One check of `check`'s conformance suite."""

    type: ClassVar[str] = "check"
    result: CheckResult

    def to_json(self) -> dict[str, Any]:
        """{"type": "check", "name", "status", "latency_ms", "detail"}."""
        r = self.result
        return {"type": self.type, "name": r.name, "status": r.status, "latency_ms": _ms(r.latency_ms), "detail": r.detail}


@dataclass(frozen=True)
class CheckSummary(Record):
    """What the whole suite came to (`check --json`'s last line)."""

    type: ClassVar[str] = "summary"
    total: int
    passed: int
    failed: int
    warnings: int
    seconds: float

    def to_json(self) -> dict[str, Any]:
        """{"type": "summary", "total", "passed", "failed", "warnings", "seconds"}."""
        return {"type": self.type, "total": self.total, "passed": self.passed, "failed": self.failed,
                "warnings": self.warnings, "seconds": round(self.seconds, 3)}  # fmt: skip


@dataclass(frozen=True)
class Assertion(Record):
    """What the CI assertions of a `send` or `replay` came to (--expect, --expect-json, --max-latency, retries)."""

    type: ClassVar[str] = "assertion"
    ok: bool
    asserted: tuple[str, ...]
    failures: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """{"type": "assertion", "ok", "asserted", "failures"}."""
        return {"type": self.type, "ok": self.ok, "asserted": list(self.asserted), "failures": list(self.failures)}


@dataclass(frozen=True)
class Payload(Record):
    """One entry of the catalog (`payloads list --json`)."""

    type: ClassVar[str] = "payload"
    template: Template

    #: For a project fixture: whether it shadows the catalog's trigger of the same name.
    shadows: bool = False

    def to_json(self) -> dict[str, Any]:
        """{"type": "payload", "trigger", "generation", "family", "description"}, and for a project fixture its "fixture"
        name and whether it "shadows" the catalog's trigger of that name."""
        t = self.template
        document: dict[str, Any] = {"type": self.type, "trigger": t.trigger, "generation": t.generation, "family": t.family,
                    "description": t.description}  # fmt: skip
        if t.fixture is not None:
            document.update(fixture=t.fixture, shadows=self.shadows)
        return document


@dataclass(frozen=True)
class PayloadsDiff(Record):
    """`payloads diff --json`: how live deliveries differ from the catalog, per trigger. Key paths, types and counts
    only (cometchat/payloads/shapes.py): no value from any delivery, so it can go in a bug report as it is."""

    type: ClassVar[str] = "payloads_diff"
    evidence: Evidence

    def to_json(self) -> dict[str, Any]:
        """{"type": "payloads_diff", "comethook", "live_deliveries", "left_out", "triggers": [...]}."""
        from comethook_cli import __version__

        e = self.evidence
        return {"type": self.type, "comethook": __version__, "live_deliveries": e.live, "left_out": e.left_out,
                "triggers": [diff.to_json() for diff in e.diffs]}  # fmt: skip


@dataclass(frozen=True)
class RestCallRecord(Record):
    """One call of CometChat's REST API: made by `trigger`, or served by `emulate` (never its API key)."""

    type: ClassVar[str] = "rest"
    call: RestCall

    def to_json(self) -> dict[str, Any]:
        """{"type": "rest", "action", "method", "url", "on_behalf_of", "status", "latency_ms", "code", "message", ...}."""
        c = self.call
        return {
            "type": self.type, "action": c.action, "method": c.method, "url": c.url, "on_behalf_of": c.on_behalf_of,
            "status": c.status, "latency_ms": _ms(c.latency_ms), "ok": c.ok, "dropped": c.dropped,
            "code": c.error.code if c.error else None, "message": c.error.message if c.error else None,
            "failure": c.failure, "failure_detail": c.failure_detail, "attempts": c.attempts, "waited_s": round(c.waited_s, 3),
            "request": c.request, "response": c.body,
        }  # fmt: skip


@dataclass(frozen=True)
class TriggerRecord(Record):
    """What a `trigger` step came to: the webhooks to expect and, with --wait, the deliveries seen."""

    type: ClassVar[str] = "trigger"
    verb: str
    ok: bool
    dropped: bool
    id: str | None
    expected: dict[str, list[str]]
    #: Basis of the trigger mapping and anything inferred, said in words.
    notes: list[str]
    waited: bool = False
    deliveries: list[str] | None = None
    verdicts: list[str | None] | None = None
    missing: list[str] | None = None

    def to_json(self) -> dict[str, Any]:
        """{"type": "trigger", "verb", "ok", "dropped", "id", "expected", "notes", "waited", "deliveries", "verdicts", "missing"}."""
        return {"type": self.type, "verb": self.verb, "ok": self.ok, "dropped": self.dropped, "id": self.id,
                "expected": self.expected, "notes": self.notes, "waited": self.waited, "deliveries": self.deliveries,
                "verdicts": self.verdicts, "missing": self.missing}  # fmt: skip


def trigger_record(verb_name: str, outcome: Outcome, arrived: Arrived | None) -> TriggerRecord:
    """The `trigger` record of what a verb came to (`arrived`: what --wait found)."""
    from comethook_cli.engine.trigger import notes

    expected = {"current": list(outcome.current), "legacy": list(outcome.legacy)}
    if arrived is None:
        return TriggerRecord(verb_name, outcome.failed is None, outcome.dropped, outcome.main_id, expected, notes(outcome))
    return TriggerRecord(
        verb_name, outcome.failed is None, outcome.dropped, outcome.main_id, expected, notes(outcome), True,
        [e.id for e in arrived.exchanges], [e.verdict.kind if e.verdict else None for e in arrived.exchanges],
        list(arrived.missing),
    )  # fmt: skip


@dataclass(frozen=True)
class Reload(Record):
    """The inspector's event stream to a page: events were missed (it fell behind, or resumed from too far back);
    reload the list from the API."""

    type: ClassVar[str] = "reload"
    reason: str

    def to_json(self) -> dict[str, Any]:
        """{"type": "reload", "reason"}."""
        return {"type": self.type, "reason": self.reason}


@dataclass(frozen=True)
class Setting(Record):
    """One effective setting (`config show --json`): its section and key in comethook.toml, value and source."""

    type: ClassVar[str] = "setting"
    section: str
    key: str
    value: Any
    #: flag, env NAME, FILE:LINE, or default.
    source: str

    def to_json(self) -> dict[str, Any]:
        """{"type": "setting", "section", "key", "value", "source"} (secrets already redacted)."""
        return {"type": self.type, "section": self.section, "key": self.key, "value": self.value, "source": self.source}


def encode(record: Record) -> str:
    """The one encoder: a record as one line of strict JSON (no newline)."""
    if isinstance(record, Event):
        return record.encode()
    return dumps(record.to_json())
