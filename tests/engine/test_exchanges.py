"""engine.exchanges.make_exchange: the one constructor of an Exchange (the listener's and the inspector's)."""

from __future__ import annotations

import json

from comethook_cli import jsonbody
from comethook_cli.cometchat.events import describe
from comethook_cli.engine.exchanges import make_exchange
from comethook_cli.models import REDACTED, Answer, AnsweredBy, Verdict, has_surrogates


def test_make_exchange_redacts_judges_and_cleans() -> None:
    body = json.dumps({"trigger": "before_message", "webhook": "wh", "data": {"data": {"text": "\ud800 hi"}}}).encode()
    payload = jsonbody.parse(body)
    answer = Answer(200, b'{"action": "do_not_propagate"}', answered_by="comethook (--respond drop)")
    headers = [("Authorization", "Basic dTpzM2NyZXQ="), ("X-Trace", "abc")]
    first = make_exchange("POST", "/webhook", "a=1", headers, body, payload, answer, received_at=5.0, latency_ms=1.5)
    second = make_exchange("POST", "/webhook", "a=1", headers, body, payload, answer, received_at=5.0, latency_ms=1.5)
    assert first.id.startswith("evt_") and first.id != second.id
    assert first.headers == (("Authorization", f"Basic {REDACTED}"), ("X-Trace", "abc"))
    assert any(has_surrogates(v) for v in vars(describe(payload)).values() if isinstance(v, str))  # the raw one has one
    assert first.info.trigger == "before_message"
    assert not any(has_surrogates(v) for v in vars(first.info).values() if isinstance(v, str))
    assert first.verdict is not None and first.verdict.kind == "drop"  # judged here, from the answer
    assert (first.response_status, first.response_body, first.latency_ms) == (200, b'{"action": "do_not_propagate"}', 1.5)
    assert (first.answered_by, first.outcome, first.payload, first.received_at) == (
        answer.answered_by,
        AnsweredBy.CANNED,
        payload,
        5.0,
    )


def test_make_exchange_keeps_a_given_verdict_and_the_answer_s_own_latency() -> None:
    body = b'{"trigger": "before_message", "data": {}}'
    answer = Answer(502, b'{"error": "refused"}', headers=(), forwarded_to="http://app.test/", error="refused",
                    latency_ms=7.0, answered_by="replay of evt_1", outcome=AnsweredBy.REPLAY)  # fmt: skip
    made = make_exchange("POST", "/", "", {}.items(), body, jsonbody.parse(body), answer, received_at=1.0, latency_ms=99.0,
                         verdict=None, listener="http://127.0.0.1:9000")  # fmt: skip
    assert made.verdict is None  # not judged again: the delivery had none
    assert made.latency_ms == 7.0 and made.response_headers == () and made.listener == "http://127.0.0.1:9000"
    assert (made.forwarded_to, made.forward_error, made.outcome) == ("http://app.test/", "refused", AnsweredBy.REPLAY)
    given = Verdict("invalid", "the answer over --max-answer")
    assert make_exchange("POST", "/", "", (), body, None, answer, received_at=1.0, latency_ms=0.0, verdict=given).verdict is given
