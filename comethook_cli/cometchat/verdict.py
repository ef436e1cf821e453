"""What CometChat does with an answer to a legacy before_message hook: pass, inject, drop, or invalid.

The documented contract (docs/concepts/answers.md): any JSON object is
injected at `metadata["@injected"]["webhooks"][<webhook id>]`; `{"action": "do_not_propagate"}` drops the
message; `{}` delivers it unchanged. Everything else is undocumented, so comethook calls it INVALID and says why.
An INJECT of what reads as an acknowledgement (`{"status": "ok"}`) carries a reason: it is almost never meant.
"""

from __future__ import annotations

import copy
from typing import Any

from comethook_cli.models import NOT_JSON, Verdict, parse_strict

DROP_ACTION = "do_not_propagate"
#: The keys and values of an answer written as an acknowledgement ("got it"), the classic bug of a new before_message
#: handler: CometChat injects it into the metadata of every message. Matched on the whole (small) object only.
ACK_KEYS = frozenset({"status", "ok", "success", "received", "acknowledged", "ack", "message", "result"})
ACK_WORDS = frozenset({"ok", "okay", "success", "received", "accepted", "acknowledged", "done", "true"})
ACK_REASON = "this looks like an acknowledgement, and CometChat will inject it into the message's metadata: answer {} to let the message pass unchanged"


def judge(request: Any, status: int | None, body: bytes) -> Verdict:
    """The verdict CometChat would apply to `body`, answered with `status`, to the before_message `request`. When it
    parses the body, the verdict carries what it read (`answer_json`), so nothing parses the answer again."""
    webhook_id = request.get("webhook") if isinstance(request, dict) else None
    webhook_id = webhook_id if isinstance(webhook_id, str) and webhook_id else "webhook-id"
    if status is None:
        return Verdict("invalid", "no answer: the endpoint could not be reached or did not answer in time", webhook_id=webhook_id)
    if not 200 <= status < 300:
        return Verdict(
            "invalid", f"HTTP {status} is not a 2xx answer (CometChat's handling is undocumented)", webhook_id=webhook_id
        )
    if not body.strip():
        return Verdict("invalid", "empty body: answer {} to let the message pass", webhook_id=webhook_id)
    answer = parse_strict(body)  # strict, as CometChat's JSON.parse: a NaN answer is not JSON
    if answer is NOT_JSON:
        return Verdict("invalid", "the answer is not JSON", webhook_id=webhook_id).carrying(answer)
    if not isinstance(answer, dict):
        reason = f"the answer is JSON {_json_kind(answer)}, not an object"
        return Verdict("invalid", reason, webhook_id=webhook_id).carrying(answer)
    if "action" in answer:
        if answer["action"] == DROP_ACTION:
            return Verdict("drop", webhook_id=webhook_id).carrying(answer)
        reason = f"unknown action {answer['action']!r} (only {DROP_ACTION!r} is documented)"
        return Verdict("invalid", reason, webhook_id=webhook_id).carrying(answer)
    if not answer:
        return Verdict("pass", webhook_id=webhook_id).carrying(answer)
    metadata = injected_metadata(request, webhook_id, answer)
    ack = ACK_REASON if is_acknowledgement(answer) else None
    return Verdict("inject", ack, metadata=metadata, webhook_id=webhook_id).carrying(answer)


def meaning(verdict: Verdict) -> str:
    """What CometChat does with the message, in one sentence (an agent's or a page's explanation)."""
    if verdict.kind == "pass":
        return "CometChat delivers the message unchanged."
    if verdict.kind == "drop":
        return "CometChat drops the message (do_not_propagate): nobody receives it."
    if verdict.kind == "inject":
        where = f'metadata["@injected"]["webhooks"]["{verdict.webhook_id or "webhook-id"}"]'
        return f"CometChat delivers the message with the answer stored at {where}."
    return f"The answer is not one CometChat documents ({verdict.reason}): what it does with it is undefined."


def is_acknowledgement(answer: dict[str, Any]) -> bool:
    """Whether an answer reads as "received" rather than as data to inject (`{"status": "ok"}`, `{"ok": true}`)."""
    return len(answer) <= 2 and all(
        key.lower() in ACK_KEYS and (value is True or (isinstance(value, str) and value.strip().lower() in ACK_WORDS))
        for key, value in answer.items()
    )


def injected_metadata(request: Any, webhook_id: str, answer: dict[str, Any]) -> dict[str, Any]:
    """The message's `data.metadata` after CometChat injects `answer` (existing metadata kept)."""
    message = request.get("data") if isinstance(request, dict) else None
    inner = message.get("data") if isinstance(message, dict) else None
    existing = inner.get("metadata") if isinstance(inner, dict) else None
    metadata: dict[str, Any] = copy.deepcopy(existing) if isinstance(existing, dict) else {}
    injected = metadata.setdefault("@injected", {})
    if not isinstance(injected, dict):
        injected = metadata["@injected"] = {}
    webhooks = injected.setdefault("webhooks", {})
    if not isinstance(webhooks, dict):
        webhooks = injected["webhooks"] = {}
    webhooks[webhook_id] = answer
    return metadata


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    return "number"
