"""The wire format: every record type round-trips through a strict parser, and no line can drive a terminal, with orjson or the stdlib."""

from __future__ import annotations

import json
import re
import time
from dataclasses import replace
from typing import Any

import pytest

from comethook_cli import jsonbody, speedups
from comethook_cli.cometchat.events import describe
from comethook_cli.cometchat.payloads import find_template
from comethook_cli.cometchat.payloads.shapes import Finding, TriggerDiff
from comethook_cli.cometchat.rest import ApiError, RestCall
from comethook_cli.engine.checks import CheckResult
from comethook_cli.engine.evidence import Evidence
from comethook_cli.engine.runs import RetryReport, Summary
from comethook_cli.models import Delivery, Exchange, Health, Rejection, Verdict, iso_time
from comethook_cli.outputs import wire
from tests.outputs.test_terminal import exchange as display_exchange

#: Text a hostile delivery may carry: ESC sequences, CR, DEL, C1 (0x9b is a one-byte CSI), bidi overrides,
#: line separators, NEL, and lone surrogates (which UTF-8 cannot even encode).
HOSTILE = "a\x1b[31mred\x07\r\x7f\x85\x9b2J\u202egnp.exe\u2028\u2029\u2066x\u2069\ud800z\udfff"
#: A raw line may hold none of these: C0 controls, DEL, C1 controls, bidi controls, separators, surrogates.
UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff]")


def refuse(name: str) -> Any:
    raise AssertionError(f"{name} is not JSON")


def strict(line: str) -> Any:
    """Parse like a strict consumer (JSON.parse): one line, no NaN or Infinity, no unsafe raw character."""
    assert "\n" not in line and "\r" not in line
    assert not UNSAFE.search(line), f"raw unsafe character in {line!r}"
    line.encode("utf-8")  # a lone surrogate could not even be written out
    return json.loads(line, parse_constant=refuse)


def exchange(body: bytes, payload: Any = None, **fields: Any) -> Exchange:
    info = describe(jsonbody.parse(body)) if payload is not None else describe(None)
    defaults: dict[str, Any] = dict(
        id="evt_" + HOSTILE, received_at=time.time(), method="POST", path="/web\x1bhook", query="a=\x9b",
        headers=(("Content-Type", "application/json"), ("X-Evil", HOSTILE)), body=body, info=info, response_status=200,
        response_body=json.dumps({"answer": HOSTILE}).encode(), latency_ms=float("nan"),
        verdict=Verdict("invalid", HOSTILE), forwarded_to="http://app/\u202e", forward_error=HOSTILE, payload=payload,
    )  # fmt: skip
    return Exchange(**{**defaults, **fields})


HOSTILE_BODY = json.dumps({"trigger": "message_sent", "data": {"text": HOSTILE, "n": 1.5}}, ensure_ascii=False).encode(
    "utf-8", "surrogatepass"
)
#: The same body with the surrogates written as \u escapes: valid UTF-8, so the listener would have parsed it.
VALID_BODY = json.dumps({"trigger": "message_sent", "data": {"text": HOSTILE, "n": 1.5, "raw": "\x85\u2028"}}).encode()
RAW_UTF8_BODY = '{"trigger":"message_sent","data":{"text":"nel\u0085 ls\u2028 csi\u009b rlo\u202e é 😀"}}'.encode()

nan = float("nan")


def records() -> dict[str, list[wire.Record]]:
    """At least one instance of every record type, full of hostile text and non-finite numbers."""
    delivery = Delivery("before_message", "http://x/\x1b", None, nan, {"a": HOSTILE}, False, HOSTILE, Verdict("drop", HOSTILE))
    return {
        "Ready": [wire.Ready("http://127.0.0.1:1/\x1b", None, "https://x.ngrok.app/\u202e")],
        "Event": [
            wire.Event(exchange(VALID_BODY, jsonbody.parse(VALID_BODY))),
            wire.Event(exchange(RAW_UTF8_BODY, jsonbody.parse(RAW_UTF8_BODY))),
            wire.Event(exchange(HOSTILE_BODY)),  # not valid UTF-8: never spliced
            wire.Event(exchange(b"not json \x1b\x00", None)),
            wire.Event(exchange(VALID_BODY, jsonbody.parse(VALID_BODY)), raw=True),
        ],
        "Rejected": [wire.Rejected(Rejection(413, HOSTILE, "POST", "/\x9b"))],
        "Error": [wire.Error(HOSTILE)],
        "Stopped": [wire.Stopped(3)],
        "DeliveryRecord": [wire.DeliveryRecord(delivery)],
        "Retries": [wire.Retries(RetryReport(2, False, HOSTILE))],
        "SendSummary": [wire.SendSummary(Summary(2, 1, 1, nan, float("inf"), 1.23456, float("-inf")))],
        "Check": [wire.Check(CheckResult(HOSTILE, "fail", nan, HOSTILE))],
        "CheckSummary": [wire.CheckSummary(3, 1, 1, 1, nan)],
        "Payload": [wire.Payload(find_template("message_sent"))],
        "PayloadsDiff": [
            wire.PayloadsDiff(
                Evidence(
                    (
                        TriggerDiff(
                            "message_sent",
                            "current",
                            2,
                            "current/message_sent",
                            (Finding("live_only", f"data.{HOSTILE}", 1, 2, ("string",)),),
                            {"Application/json": 2},
                        ),
                    ),
                    {"send": 3},
                )
            )
        ],
        "Setting": [wire.Setting("listen", "forward-to", ["8000", HOSTILE], "comethook.toml:3")],
        "Overflow": [wire.Overflow(12)],
        "RestCallRecord": [
            wire.RestCallRecord(
                RestCall(
                    "send_message",
                    "POST",
                    "http://x/\x1b",
                    403,
                    {"e": HOSTILE},
                    nan,
                    ApiError("ERR_BLOCKED_BY_WEBHOOK", HOSTILE),
                    request={"data": {"text": HOSTILE}},
                    on_behalf_of=HOSTILE,
                )
            ),
            wire.RestCallRecord(
                RestCall("get_user", "GET", "/v3/users/a", None, None, None, failure="timeout", failure_detail=HOSTILE)
            ),
        ],
        "TriggerRecord": [
            wire.TriggerRecord(
                "message", True, False, HOSTILE, {"current": ["message_sent"]}, [HOSTILE], True, [HOSTILE], ["drop", None], []
            )
        ],
        "Reload": [wire.Reload(HOSTILE)],
        "Explanation": [
            wire.Explanation(Verdict("inject", HOSTILE, {"@injected": {"webhooks": {HOSTILE: {"a": nan}}}}, HOSTILE)),
            wire.Explanation(Verdict("invalid", HOSTILE)),
        ],
        "TunnelHealth": [
            wire.health_record(Health("tunnel", "down", HOSTILE, HOSTILE, "https://a.example.test")),
            wire.health_record(Health("app", "up", HOSTILE, "", "http://localhost:8000")),
        ],
        "Assertion": [wire.Assertion(False, ("--expect drop", HOSTILE), (HOSTILE,)), wire.Assertion(True, ("--expect ok",), ())],
    }


def test_every_record_type_is_covered() -> None:
    # A new record type fails here until it has an instance above.
    assert {cls.__name__ for cls in wire.Record.__subclasses__()} == set(records())


@pytest.mark.parametrize("kind", sorted(records()))
def test_every_record_round_trips_through_a_strict_parser(kind: str) -> None:
    for record in records()[kind]:
        line = wire.encode(record)
        parsed = strict(line)
        assert parsed["type"] == record.type == next(iter(parsed.values()))
        # The same values once parsed, except that non-finite numbers became null.
        assert parsed == json.loads(json.dumps(wire._finite(record.to_json()), default=str))


def test_nan_and_infinity_become_null() -> None:
    summary = strict(wire.encode(wire.SendSummary(Summary(1, 1, 0, nan, float("inf"), 2.0, float("-inf")))))
    assert (summary["p50_ms"], summary["p95_ms"], summary["p99_ms"], summary["rps"]) == (None, None, 2.0, None)
    assert strict(wire.encode(wire.Event(exchange(VALID_BODY, jsonbody.parse(VALID_BODY)))))["latency_ms"] is None


def test_hostile_text_survives_exactly_after_parsing() -> None:
    error = strict(wire.encode(wire.Error(HOSTILE)))
    assert error["message"] == HOSTILE  # escaped on the wire, the same string once parsed


@pytest.mark.parametrize("body", [VALID_BODY, RAW_UTF8_BODY], ids=["escaped", "raw-utf8"])
def test_the_spliced_event_equals_the_slow_path(body: bytes) -> None:
    event = wire.Event(exchange(body, jsonbody.parse(body), latency_ms=1.5))
    fast = event.encode()
    slow = wire.dumps(event.to_json())
    assert fast.endswith(',"body":' + wire.json_safe(body.decode()) + "}")
    assert strict(fast) == strict(slow)


def test_the_splice_is_skipped_where_it_would_be_wrong() -> None:
    multiline = b'{\n  "trigger": "message_sent"\n}'
    event = wire.Event(exchange(multiline, jsonbody.parse(multiline), latency_ms=1.0))
    assert strict(event.encode()) == strict(wire.dumps(event.to_json())) and "\n" not in event.encode()
    compressed = exchange(VALID_BODY, jsonbody.parse(VALID_BODY), headers=(("Content-Encoding", "gzip"),), latency_ms=1.0)
    assert wire.Event(compressed).encode() == wire.dumps(wire.Event(compressed).to_json())


def test_an_event_line_is_encoded_once_for_every_output_that_writes_it() -> None:
    """The NDJSON view and the inspector's stream write the very line the first of them encoded (kept on the exchange);
    `history show --json`'s raw form is its own, and a redacted copy of the exchange encodes afresh."""
    e = exchange(VALID_BODY, jsonbody.parse(VALID_BODY), latency_ms=1.0)
    first = wire.Event(e).encode()
    assert wire.encode(wire.Event(e)) is first and first == wire.Event(replace(e)).encode()
    raw = wire.Event(e, raw=True).encode()
    assert strict(raw)["raw"] == VALID_BODY.decode() and "raw" not in strict(first)
    assert wire.Event(e).encode() is first


@pytest.mark.parametrize(
    ("epoch", "shown"),
    [
        (0.0, "1970-01-01T00:00:00.000Z"),
        (1.9995, "1970-01-01T00:00:01.999Z"),  # milliseconds are cut, not rounded up into the next second
        (1764484800.123456, "2025-11-30T06:40:00.123Z"),
    ],
)
def test_received_at_is_iso_8601_utc_with_milliseconds(epoch: float, shown: str) -> None:
    assert iso_time(epoch) == shown
    assert wire.Event(exchange(b"{}", received_at=epoch)).to_json()["received_at"] == shown


# --- either encoder: orjson or the stdlib -----------------------------------------------------------------------------


@pytest.mark.parametrize("speedups_on", [True, False], ids=["orjson", "json"])
def test_an_unsafe_character_in_an_event_line_is_escaped_by_either_encoder(
    speedups_on: bool, request: pytest.FixtureRequest
) -> None:
    if not speedups_on:
        request.getfixturevalue("without_speedups")
    e = display_exchange(info=display_exchange().info.__class__("before_message", "legacy", "message", "a\u202eb\x85c → d"))
    line = wire.Event(e).encode()
    assert "\u202e" not in line and "\x85" not in line and "\\u202e" in line and "\\u0085" in line
    assert json.loads(line)["summary"] == "a\u202eb\x85c → d"


async def test_a_real_delivery_is_encoded_by_orjson(start: Any) -> None:
    """aiohttp hands header names over as multidict's `istr`, which orjson refuses as a key: the listener stores
    plain `str` names, so every `--json` line takes orjson's way, not the stdlib's."""
    import aiohttp

    running = await start()
    body, headers = b'{"trigger":"after_message","data":{}}', {"Content-Type": "application/json", "X-Custom": "1"}
    async with aiohttp.ClientSession() as client, client.post(running.url, data=body, headers=headers) as response:
        assert response.status == 200
    (stored,) = running.exchanges
    assert all(type(name) is str for name, _ in stored.headers)
    if speedups.active()["orjson"]:
        document = wire.Event(stored).to_json()
        assert speedups.dumpb(document) is not None
