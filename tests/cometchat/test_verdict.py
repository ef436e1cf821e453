"""What CometChat does with a before_message answer."""

from __future__ import annotations

import pytest

from comethook_cli.cometchat.verdict import judge

REQUEST = {
    "trigger": "before_message",
    "webhook": "wh-1",
    "data": {"data": {"text": "hi", "metadata": {"@injected": {"extensions": {"x": 1}}}}},
}


@pytest.mark.parametrize(
    ("status", "body", "kind", "reason"),
    [
        (200, b"{}", "pass", None),
        (200, b" { } ", "pass", None),
        (200, b'{"action": "do_not_propagate"}', "drop", None),
        (201, b'{"score": 0.9}', "inject", None),
        (200, b'{"status": "ok"}', "inject", "looks like an acknowledgement"),
        (200, b'{"ok": true}', "inject", "looks like an acknowledgement"),
        (200, b'{"received": true}', "inject", "looks like an acknowledgement"),
        (200, b'{"success": true, "message": "OK"}', "inject", "looks like an acknowledgement"),
        (200, b'{"status": "flagged"}', "inject", None),  # data worth injecting, not a "got it"
        (200, b'{"ok": false}', "inject", None),
        (200, b'{"ok": true, "score": 1}', "inject", None),
        (200, b'{"action": "block"}', "invalid", "unknown action 'block'"),
        (500, b"{}", "invalid", "HTTP 500"),
        (200, b"", "invalid", "empty body"),
        (200, b"ok", "invalid", "not JSON"),
        (200, b"[1]", "invalid", "JSON array"),
        (200, b'"x"', "invalid", "JSON string"),
        (200, b"\xff\xfe", "invalid", "not JSON"),
        (None, b"", "invalid", "no answer"),
    ],
)
def test_verdict_matrix(status: int | None, body: bytes, kind: str, reason: str | None) -> None:
    verdict = judge(REQUEST, status, body)
    assert verdict.kind == kind
    if reason:
        assert verdict.reason is not None and reason in verdict.reason
    else:
        assert verdict.reason is None


def test_inject_merges_into_existing_metadata_under_the_webhook_id() -> None:
    verdict = judge(REQUEST, 200, b'{"score": 0.9}')
    assert verdict.metadata == {"@injected": {"extensions": {"x": 1}, "webhooks": {"wh-1": {"score": 0.9}}}}
    # The request itself is not modified.
    assert "webhooks" not in REQUEST["data"]["data"]["metadata"]["@injected"]  # type: ignore[index]


def test_inject_without_webhook_id_uses_a_placeholder() -> None:
    verdict = judge({"data": {}}, 200, b'{"a": 1}')
    assert verdict.metadata == {"@injected": {"webhooks": {"webhook-id": {"a": 1}}}}
