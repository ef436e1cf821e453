"""Shapes of JSON bodies, and how live deliveries differ from the catalog's templates (`comethook payloads diff`).

A shape is key path → the JSON types seen there. Paths name list items `[]` and the keys of a uid-keyed map `*`
(members, users, mentions, an @injected webhook id, any key that is an id of the same delivery, or a number),
so one delivery's people never make paths of their own. A report holds paths, types, counts and the media type of
Content-Type: never a value of a delivery, so it can be shared in a bug report as it is.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: Maps whose keys are uids, guids or webhook ids: their keys are data, not shape.
KEYED_MAPS = frozenset({"members", "users", "mentions", "webhooks", "reactions", "receipts"})
#: Keys whose string values identify someone or something: a key of the same body equal to one is data, not shape.
IDENTIFIERS = frozenset({"uid", "guid", "id", "sender", "receiver", "by", "owner", "conversationId", "muid"})
#: A Content-Type's media type worth reporting (anything else is reported as "other": it is not a value to share).
_MEDIA_TYPE = re.compile(r"^[A-Za-z0-9.+-]{1,32}/[A-Za-z0-9.+-]{1,48}$")
#: A key path's longest say in a report (a stranger's delivery may carry any key).
MAX_PATH = 200
_DEPTH = 64


def json_type(value: Any) -> str:
    """The JSON type of a parsed value: object, array, string, integer, number, boolean or null."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def shape(body: Any) -> dict[str, str]:
    """Key path → JSON type of one body (a path seen with several types in one body keeps the first)."""
    found: dict[str, str] = {}
    _walk(body, "", None, _strings(body), found, 0)
    return found


def _strings(node: Any, found: set[str] | None = None, depth: int = 0) -> set[str]:
    """Every identifier in a body (the value of a uid, guid, sender, receiver or ...Id key): a key equal to one of them
    is data (a uid-keyed map), not shape."""
    found = set() if found is None else found
    if depth > _DEPTH:
        return found
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, str) and (key in IDENTIFIERS or key.endswith(("Id", "_id"))):
                found.add(value)
            _strings(value, found, depth + 1)
    elif isinstance(node, list):
        for item in node:
            _strings(item, found, depth + 1)
    return found


def _walk(node: Any, path: str, parent: str | None, values: set[str], found: dict[str, str], depth: int) -> None:
    if depth > _DEPTH:
        return
    if isinstance(node, dict):
        for key, value in node.items():
            data = parent in KEYED_MAPS or key in values or key.isdigit()
            part = "*" if data else key
            child = f"{path}.{part}" if path else part
            if len(child) > MAX_PATH:
                continue
            found.setdefault(child, json_type(value))
            _walk(value, child, None if data else key, values, found, depth + 1)
    elif isinstance(node, list):
        child = f"{path}[]"
        for item in node:
            found.setdefault(child, json_type(item))
            _walk(item, child, parent, values, found, depth + 1)


def media_type(content_type: str | None) -> str:
    """A Content-Type's media type as sent (its casing kept: that is the point), "none", or "other"."""
    if content_type is None:
        return "none"
    media = content_type.split(";", 1)[0].strip()
    return media if _MEDIA_TYPE.match(media) else "other"


@dataclass(frozen=True)
class Finding:
    """One difference: a path live deliveries carry and the template lacks (`live_only`), the reverse
    (`template_only`), or a path whose type differs (`type`); `deliveries` of `of` live deliveries show it."""

    kind: str
    path: str
    deliveries: int
    of: int
    live_types: tuple[str, ...] = ()
    template_type: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The finding as a report holds it: path, types, counts."""
        document: dict[str, Any] = {"kind": self.kind, "path": self.path, "deliveries": self.deliveries, "of": self.of}
        if self.live_types:
            document["live_types"] = list(self.live_types)
        if self.template_type is not None:
            document["template_type"] = self.template_type
        return document


@dataclass(frozen=True)
class TriggerDiff:
    """How one trigger's live deliveries (of one generation) differ from its template (None: the catalog has none)."""

    trigger: str
    generation: str
    deliveries: int
    template: str | None
    findings: tuple[Finding, ...]
    content_types: Mapping[str, int] = field(default_factory=dict)
    #: What the template was built as for these deliveries: their message type, and ", group" (None: no message).
    variant: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The trigger's part of the report."""
        return {"trigger": self.trigger, "generation": self.generation, "variant": self.variant, "deliveries": self.deliveries,
                "template": self.template, "content_types": dict(self.content_types),
                "findings": [f.to_json() for f in self.findings]}  # fmt: skip


def compare(
    trigger: str, generation: str, template: Mapping[str, str] | None, template_key: str | None,
    live: Iterable[tuple[Mapping[str, str], str]],
) -> TriggerDiff:  # fmt: skip
    """The findings for one trigger: `template` is its template's shape, `live` each live delivery's (shape, media type)."""
    seen: Counter[str] = Counter()
    types: dict[str, Counter[str]] = {}
    media: Counter[str] = Counter()
    total = 0
    for body, content_type in live:
        total += 1
        media[content_type] += 1
        for path, kind in body.items():
            seen[path] += 1
            types.setdefault(path, Counter())[kind] += 1
    expected = template or {}
    findings: list[Finding] = []
    for path in sorted(seen):
        live_types = {kind for kind in types[path] if kind != "null"}
        if path not in expected:
            findings.append(Finding("live_only", path, seen[path], total, tuple(sorted(types[path]))))
        elif live_types and live_types != {expected[path]}:
            findings.append(Finding("type", path, sum(types[path].values()), total, tuple(sorted(types[path])), expected[path]))
    for path in sorted(expected):
        if seen[path] < total:
            findings.append(Finding("template_only", path, total - seen[path], total, (), expected[path]))
    return TriggerDiff(trigger, generation, total, template_key, tuple(_topmost(findings)), dict(media))


def _topmost(findings: list[Finding]) -> list[Finding]:
    """Findings without those below another of the same kind (a missing object's keys are missing with it)."""
    kept: list[Finding] = []
    tops: dict[str, list[str]] = {}
    for finding in sorted(findings, key=lambda f: (f.kind, f.path)):
        above = tops.setdefault(finding.kind, [])
        if finding.kind != "type" and any(
            finding.path.startswith(top + ".") or finding.path.startswith(top + "[]") for top in above
        ):
            continue
        above.append(finding.path)
        kept.append(finding)
    order = {"live_only": 0, "template_only": 1, "type": 2}
    return sorted(kept, key=lambda f: (order[f.kind], f.path))
