"""The catalog, the verdict and one delivery, as plain functions (the command layer is not involved)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from comethook_cli import jsonbody
from comethook_cli.cometchat import verdict
from comethook_cli.cometchat.payloads import BuildOptions, IdSource, Template, build, catalog, encode, find_template
from comethook_cli.engine.config import default
from comethook_cli.models import Delivery, Generation, Verdict

#: The clock of a seeded build unless `now=` says otherwise (2023-11-14T22:13:20Z): a seed alone gives the same body.
SEEDED_NOW = 1_700_000_000.0


def _option(name: str) -> Any:
    return default(BuildOptions, name)


@dataclass(frozen=True)
class Trigger:
    """One entry of the catalog: a trigger name in one generation (legacy or current webhooks)."""

    name: str
    generation: Generation
    family: str
    description: str


def triggers(generation: Literal["legacy", "current"] | None = None) -> list[Trigger]:
    """Every trigger comethook can build, legacy first (a trigger with both shapes is listed twice)."""
    return [
        Trigger(t.trigger, t.generation, t.family, t.description)
        for t in catalog()
        if generation is None or t.generation == generation
    ]


def build_payload(
    trigger: str,
    *,
    legacy: bool = False,
    type: str = _option("type"),
    text: str | None = _option("text"),
    sender: str = _option("sender"),
    receiver: str = _option("receiver"),
    group: str | None = _option("group"),
    webhook_id: str = _option("webhook_id"),
    app_id: str = _option("app_id"),
    region: str = _option("region"),
    set: Mapping[str, Any] | None = None,
    add: Mapping[str, Any] | None = None,
    unset: Sequence[str] = (),
    fixtures: str | os.PathLike[str] | None = None,
    seed: int | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """The body CometChat would POST for `trigger`, built like `comethook send` (the same options, `set` as --set).

    `set` maps dotted paths that exist to values, applied in order (`{"data.message.data.text": "hi"}`; a path that does
    not exist raises `InvalidSetting` naming the nearest one); `add` makes paths, `unset` removes them (--add, --unset).
    `fixtures` is a directory of project fixtures (`comethook payloads save`): `trigger` may name one. With a `seed`,
    every id and random part is the same on each call, and so is the clock (`now`, default 2023-11-14):
    the same arguments give the same body. Raises `UsageError` for an unknown trigger or type, and `InvalidSetting`
    (a UsageError and a ValueError) naming the argument for an unknown region (`Unknown region='xx'.`).
    """
    from comethook_cli.engine import values

    options = BuildOptions(
        type=type, text=text, sender=sender, receiver=receiver, group=group, webhook_id=webhook_id, app_id=app_id,
        region=values.region(region), sets=tuple((set or {}).items()), adds=tuple((add or {}).items()),
        unsets=tuple(unset),
    )  # fmt: skip
    if seed is not None and now is None:
        now = SEEDED_NOW
    return build(find_template(trigger, legacy, project_fixtures(fixtures)), options, IdSource(seed), now)


def project_fixtures(directory: str | os.PathLike[str] | None) -> dict[str, Template]:
    """The fixtures in `directory` by name (none for None); UsageError naming the first file that is not a fixture."""
    if directory is None:
        return {}
    from comethook_cli.engine import fixtures
    from comethook_cli.errors import UsageError

    found, problems = fixtures.load(Path(directory))
    if problems:
        raise UsageError(problems[0], "Fix the file, or save it again with `comethook payloads save ID NAME`.")
    return found


def judge(request: Mapping[str, Any] | bytes | None, *, status: int | None = 200, answer: Any) -> Verdict:
    """What CometChat does with `answer` (HTTP `status`) to the before_message delivery `request`: pass, inject, drop
    or invalid, with the reason.

    `answer` is the body your endpoint returned: bytes or text as sent, or any JSON value (a dict ...).
    `request` (the delivery's body) names the webhook an injected answer is filed under; None will do otherwise.
    """
    if isinstance(answer, bytes):
        raw = answer
    elif isinstance(answer, str):
        raw = answer.encode("utf-8")
    else:
        raw = json.dumps(answer).encode("utf-8")
    if isinstance(request, bytes):
        try:
            request = jsonbody.parse(request)
        except jsonbody.JsonBodyError:
            request = None
    return verdict.judge(request, status, raw)


async def deliver(
    url: str,
    body: Mapping[str, Any] | bytes,
    *,
    basic_auth: str | None = None,
    timeout: float = 10,
    headers: Mapping[str, str] | None = None,
) -> Delivery:
    """POST one delivery the way CometChat does (`Application/json`, optional Basic auth `USER:PASS`) and read the answer.

    Never raises for what the endpoint does: `Delivery.ok`, `.status`, `.response`, `.verdict` (for before_message)
    and `.failure` (unreachable, tls, timeout, too_large, protocol) say what happened.
    """
    from comethook_cli.engine import sender
    from comethook_cli.engine.auth import basic_auth_header
    from comethook_cli.engine.urls import normalize_url

    raw = body if isinstance(body, bytes) else encode(dict(body))
    try:
        payload = jsonbody.parse(raw)
    except jsonbody.JsonBodyError:
        payload = None
    trigger = payload.get("trigger") if isinstance(payload, dict) else None
    extra = sender.marked(dict(headers or {}), "send")  # sorted apart from CometChat's in a listener's history
    if basic_auth:
        extra["Authorization"] = basic_auth_header(basic_auth)
    outgoing = sender.Outgoing(raw, payload, trigger if isinstance(trigger, str) else None)
    import aiohttp

    async with aiohttp.ClientSession(connector=sender.connector(1, insecure=False)) as session:
        return await sender.deliver(session, normalize_url(url), outgoing, extra, timeout)
