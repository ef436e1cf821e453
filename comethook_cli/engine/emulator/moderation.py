"""`emulate --moderation`: a sent message judged by the rules, as CometChat's moderation answers and then reports it.

What is observed live (the webhooks sheet §10): a blocked message still gets a 2xx answer with an id, and
moderation_engine_blocked follows, naming the rule; a clean one gets moderation_engine_approved beside message_sent.
What is inferred: no message_sent (or after_message) for a blocked message (a third party saw moderation "silently
block" test messages); the REST answer's `data.moderation.status` "pending" (CometChat's SDK docs say a moderated
message is sent pending; REST's answer is undocumented); that only text, image and video messages are judged (the
SDK docs' list), by their text; and the rule's `revisionId`. The stored message keeps the final status, so
`GET /messages/{id}` reads "approved" or "disapproved" afterwards.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Any

from comethook_cli.cometchat.moderation import ModerationRule, first_match
from comethook_cli.engine.emulator.core import Core

#: The message types CometChat's moderation judges (its SDK docs: text, image and video messages).
JUDGED_TYPES = ("text", "image", "video")


@dataclass(frozen=True)
class Judgement:
    """What moderation made of one message: the rule it broke (None: approved)."""

    rule: ModerationRule | None

    @property
    def blocked(self) -> bool:
        """Whether the message was blocked."""
        return self.rule is not None


def judge(app: Core, message: dict[str, Any]) -> Judgement | None:
    """The judgement on a message about to be sent (None: moderation is off, or this kind is not judged)."""
    rules = app.config.moderation
    if rules is None or message.get("category") != "message" or message.get("type") not in JUDGED_TYPES:
        return None
    return Judgement(first_match(rules, message.get("data", {}).get("text")))


def report(app: Core, message: dict[str, Any], judgement: Judgement | None, options: dict[str, Any]) -> dict[str, Any]:
    """Record the judgement on the stored message, fire its webhook, and return the send's answer (the message,
    still "pending" as moderation answers a send)."""
    if judgement is None:
        return message
    answer = copy.deepcopy(message)
    answer["data"]["moderation"] = {"status": "pending"}
    rule = judgement.rule
    if rule is None:
        message["data"]["moderation"] = {"status": "approved"}
        app.fire("moderation_engine_approved", message=message, **options)
        return answer
    now = int(time.time())
    message["data"]["moderation"] = {
        "status": "disapproved",
        "rule": {"id": rule.id, "name": rule.entry, "action": ["blockMessage"]},
    }
    sets = (
        ("data.message.data.moderation", message["data"]["moderation"]),
        ("data.moderation", [{"rule": {"id": rule.id, "name": rule.entry, "revisionId": f"{app.config.app_id}_{rule.id}_1",
                                       "action": ["blockMessage"], "blockedAt": now}}]),
    )  # fmt: skip
    app.fire("moderation_engine_blocked", message=message, adds=sets, **options)
    return answer
