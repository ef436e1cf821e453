"""Live deliveries as evidence: the history's exchanges from CometChat (not from send, replay, check or emulate),
compared with the catalog's template of each trigger and generation (`comethook payloads diff`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from comethook_cli import jsonbody
from comethook_cli.cometchat.events import message_of
from comethook_cli.cometchat.payloads import MESSAGE_TYPES, BuildOptions, IdSource, Template, build, catalog
from comethook_cli.cometchat.payloads.shapes import TriggerDiff, compare, media_type, shape
from comethook_cli.engine.bodies import plain_body
from comethook_cli.engine.exchanges import is_live
from comethook_cli.models import Exchange

#: A fixed clock and ids for the templates' shapes: shapes only, so any values do.
_SHAPE_NOW = 1_700_000_000.0


@dataclass(frozen=True)
class Evidence:
    """What the history holds for the diff: the findings per trigger, and what was left out and why."""

    diffs: tuple[TriggerDiff, ...]
    #: Exchanges left out, by why: the comethook client that sent them (send, replay, check, emulate), or not a
    #: CometChat delivery at all. An older row without the mark counts as live when it looks it (engine.exchanges.is_live).
    left_out: dict[str, int] = field(default_factory=dict)

    @property
    def live(self) -> int:
        """How many live deliveries the findings rest on."""
        return sum(diff.deliveries for diff in self.diffs)


def diff_history(exchanges: Iterable[Exchange], trigger: str | None = None) -> Evidence:
    """Compare every live delivery among `exchanges` (of `trigger`, when given) with its template's shape."""
    templates: dict[tuple[str, str], Template] = {(t.trigger, t.generation): t for t in catalog()}
    grouped: dict[tuple[str, str, str], list[tuple[dict[str, str], str]]] = {}
    left_out: Counter[str] = Counter()
    for exchange in exchanges:
        if trigger is not None and exchange.info.trigger != trigger:
            continue
        if not is_live(exchange):
            left_out[exchange.origin or "comethook (older history)"] += 1
            continue
        try:
            payload = jsonbody.parse(plain_body(exchange))
        except (ValueError, jsonbody.JsonBodyError):
            left_out["not JSON"] += 1
            continue
        if not isinstance(payload, dict) or not isinstance(payload.get("trigger"), str):
            left_out["not a CometChat delivery"] += 1
            continue
        content_type = next((v for n, v in exchange.headers if n.lower() == "content-type"), None)
        grouped.setdefault((exchange.info.trigger, exchange.info.generation, variant(payload)), []).append(
            (shape(payload), media_type(content_type))
        )
    diffs = []
    for (name, generation, kind), live in sorted(grouped.items()):
        template = templates.get((name, generation))
        expected = None
        if template is not None:
            message_type, _, to_group = kind.partition(", ")
            options = BuildOptions(type=message_type or "text", group="cometchat-guid-1" if to_group else None)
            expected = shape(build(template, options, IdSource(1), _SHAPE_NOW))
        found = compare(name, generation, expected, template.key if template is not None else None, live)
        diffs.append(replace(found, variant=kind or None))
    return Evidence(tuple(diffs), dict(left_out))


def variant(payload: dict[str, Any]) -> str:
    """What the template is built as to compare with this delivery: its message's type (a media message carries
    attachments, a text one does not) and ", group" for a group conversation; "" for a delivery with no message."""
    message = message_of(payload)
    if message is None:
        return ""
    kind = message.get("type")
    kind = "custom" if message.get("category") == "custom" else kind
    kind = kind if kind in MESSAGE_TYPES else "text"
    return f"{kind}, group" if message.get("receiverType") == "group" else str(kind)
