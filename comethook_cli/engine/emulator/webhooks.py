"""The webhooks the emulated app fires: payloads built from the catalog with its real users and groups, delivered
in the background (with CometChat's retries when asked), and before_message called in turn before a message is stored.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable, Iterable
from typing import Any

import aiohttp

from comethook_cli.cometchat.payloads import BuildOptions, build, encode, find_template
from comethook_cli.engine.auth import basic_auth_header
from comethook_cli.engine.config import EmulatorConfig, WebhookTarget
from comethook_cli.engine.emulator import rules
from comethook_cli.engine.emulator.state import Store
from comethook_cli.engine.sender import COMETCHAT_RETRY_DELAYS, Outgoing, connector, deliver
from comethook_cli.models import ORIGIN_HEADER, Delivery

#: A stored user's and group's fields that their entities in a webhook carry, when stored (createdAt, updatedAt of a
#: user, a group's description and metadata, are in no webhook entity CometChat shows).
USER_ENTITY = ("uid", "name", "avatar", "link", "role", "status", "statusMessage", "lastActiveAt", "metadata", "tags")
GROUP_ENTITY = ("guid", "name", "icon", "type", "owner", "createdAt", "updatedAt", "tags")


class Webhooks:
    """The configured webhook targets, the client that reaches them, and the deliveries still in flight."""

    def __init__(self, config: EmulatorConfig, store: Store, on_delivery: Callable[[Delivery], None]) -> None:
        self.config = config
        self.store = store
        self.on_delivery = on_delivery
        self._client: aiohttp.ClientSession | None = None
        self._pending: set[asyncio.Task[None]] = set()

    def open(self) -> None:
        """Open the client the deliveries share."""
        self._client = aiohttp.ClientSession(connector=connector(100, insecure=False))

    async def cancel(self) -> None:
        """Cancel the deliveries still in flight, and wait for them to end."""
        for task in list(self._pending):
            task.cancel()
        await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def close(self) -> None:
        """Close the client."""
        if self._client is not None:
            await self._client.close()

    def entities(self) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        """The known users and groups as webhooks carry them: exactly what was stored (nothing invented: no avatar,
        icon or lastActiveAt unless stored, the stored status), plus a group's counts and conversation id."""
        state = self.store.state
        users = {uid: {k: u[k] for k in USER_ENTITY if k in u} for uid, u in state.users.items()}
        users[rules.SYSTEM_USER] = {"uid": rules.SYSTEM_USER, "name": "App System"}
        groups = {}
        for guid, g in state.groups.items():
            entity = {k: g[k] for k in GROUP_ENTITY if k in g}
            members = state.members.get(guid, {})
            online = sum(1 for uid in members if state.users.get(uid, {}).get("status") == "available")
            entity.update(membersCount=len(members), onlineMembersCount=online, conversationId=f"group_{guid}")
            groups[guid] = entity
        return users, groups

    def payload(self, trigger: str, target: WebhookTarget, **options: Any) -> dict[str, Any]:
        """The catalog's template for `trigger`, filled with the state's entities and `options`."""
        users, groups = self.entities()
        template = find_template(trigger, legacy=self.legacy_shape(trigger), fixtures=self.config.fixtures)
        built = BuildOptions(
            webhook_id=target.webhook_id, app_id=self.config.app_id, region=self.config.region, users=users, groups=groups,
            **options,
        )  # fmt: skip
        return build(template, built)

    def legacy_shape(self, trigger: str) -> bool:
        """Whether this app sends `trigger` in its legacy shape."""
        return trigger in rules.LEGACY_TRIGGERS or (self.config.legacy and trigger in rules.BOTH_GENERATIONS)

    def _targets(self, trigger: str) -> list[WebhookTarget]:
        generation_fits = trigger in rules.BOTH_GENERATIONS or (trigger in rules.LEGACY_TRIGGERS) == self.config.legacy
        return [t for t in self.config.webhooks if generation_fits and t.wants(trigger)]

    def fire(self, trigger: str, merge: str | None = None, each: Iterable[str] = (), **options: Any) -> None:
        """Deliver `trigger` to every subscribed webhook, in the background. With `merge` (a map in data, e.g.
        `members`) and `each` (its uids), one delivery carries every uid: the template is built once per uid."""
        for target in self._targets(trigger):
            uids = list(each)
            if merge and uids:
                payload = self.payload(trigger, target, receiver=uids[0], **options)
                for uid in uids[1:]:
                    payload["data"][merge].update(self.payload(trigger, target, receiver=uid, **options)["data"][merge])
            else:
                payload = self.payload(trigger, target, **options)
            task = asyncio.get_running_loop().create_task(self._deliver_async(target, trigger, payload))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    def fire_in_order(self, steps: Iterable[tuple[str, dict[str, Any]]]) -> None:
        """Deliver several triggers (each with its builder options) to every webhook, one after another in this order
        (a call's lifecycle, a receipt then its `*_to_all`), in the background: built now, from the state as it is."""
        steps = list(steps)
        for target in self.config.webhooks:
            payloads = [(trigger, self.payload(trigger, target, **options)) for trigger, options in steps
                        if target in self._targets(trigger)]  # fmt: skip
            if payloads:
                task = asyncio.get_running_loop().create_task(self._deliver_all(target, payloads))
                self._pending.add(task)
                task.add_done_callback(self._pending.discard)

    async def _deliver_all(self, target: WebhookTarget, payloads: list[tuple[str, dict[str, Any]]]) -> None:
        for trigger, payload in payloads:
            await self._deliver_async(target, trigger, payload)

    @staticmethod
    def _headers(target: WebhookTarget) -> dict[str, str]:
        marks = {ORIGIN_HEADER: "emulate"}  # so a `comethook listen` behind the webhook files these apart from CometChat's
        return {**marks, "Authorization": basic_auth_header(target.basic_auth)} if target.basic_auth else marks

    async def _deliver_async(self, target: WebhookTarget, trigger: str, payload: dict[str, Any]) -> None:
        assert self._client is not None
        outgoing = Outgoing(encode(payload), payload, trigger)
        cadence = COMETCHAT_RETRY_DELAYS if self.config.retry_delays is None else self.config.retry_delays
        delays = (0.0, *cadence) if self.config.retry_on_failure else (0.0,)
        for attempt, delay in enumerate(delays, start=1):
            if delay:
                await asyncio.sleep(delay)
            delivery = await deliver(
                self._client, target.url, outgoing, self._headers(target), self.config.delivery_timeout, attempt
            )
            self.on_delivery(delivery)
            if delivery.ok:
                return

    async def before_message(self, message: dict[str, Any], options: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
        """Call every before_message webhook, in turn, before storing: (dropped?, the metadata to store)."""
        metadata: dict[str, Any] = copy.deepcopy(message["data"].get("metadata") or {})
        assert self._client is not None
        for target in self._targets("before_message"):
            payload = self.payload("before_message", target, message=message, **options)
            outgoing = Outgoing(encode(payload), payload, "before_message")
            delivery = await deliver(self._client, target.url, outgoing, self._headers(target), self.config.hook_timeout)
            self.on_delivery(delivery)
            verdict = delivery.verdict
            if verdict is None or verdict.kind == "invalid":
                if self.config.on_hook_failure == "drop":
                    return True, metadata
            elif verdict.kind == "drop":
                return True, metadata
            elif verdict.kind == "inject" and verdict.metadata is not None:
                answer = verdict.metadata["@injected"]["webhooks"][target.webhook_id]
                metadata.setdefault("@injected", {}).setdefault("webhooks", {})[target.webhook_id] = answer
        return False, metadata
