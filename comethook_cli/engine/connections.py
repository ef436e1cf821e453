"""The listener's open connections: a cap derived from the file-descriptor limit, and an aiohttp server that keeps to it.

Past EVICT_AT of the cap, each new connection closes the slowest other one (a body behind the minimum rate, then
whoever has waited longest for its headers or its next request), never one being answered; the shared body budget
makes room the same way. What the listener knows of each connection is its `Slot`.
"""

from __future__ import annotations

import asyncio
import heapq
import json
from typing import Any

from aiohttp import web

from comethook_cli.engine.budget import ByteBudget
from comethook_cli.engine.warnings import RateLimitedWarnings

#: A connection may sit idle (before its first request, between requests, or while its headers trickle in)
#: this long before it is closed: aiohttp's keep-alive timer runs from the connection's start and from each answer.
IDLE_TIMEOUT = 15.0
#: File descriptors kept free when the connection cap is derived (see fd_reserve): an idle `listen` holds 24 (stdio, the
#: history's database, WAL and shared memory, the event loop, the listening and inspector sockets), the tunnel adds
#: about 4; the rest is for forwards to your app (one per delivery being forwarded, plus copies), inspector tabs, and
#: the connections a flood queues up, which the loop accepts all at once (uvloop drops every queued connection, real
#: deliveries too, when accept() runs out). Under `ulimit -n 256` and a 256-connection slow-body flood, 96 (a cap of 160)
#: lost no delivery of 100 on either loop; 64 (192) lost 11 on asyncio's own loop in one run of two.
FD_RESERVE = (96, 256)
#: Past this share of the connection cap, each new connection closes the slowest other one: room to accept is kept.
EVICT_AT = 0.9
#: A body counts as stalled (the body budget may close it for a new one) once it is this many seconds behind the rate.
STALLED = 1.0
#: Why a body closed to make room got its 408; written at once (its descriptor is free at once, not once its handler runs).
EVICTED = "slow body closed to make room"
_EVICTED_BODY = json.dumps({"error": EVICTED}).encode()
EVICTED_ANSWER = (
    b"HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: %d\r\n"
    b"Connection: close\r\n\r\n%s" % (len(_EVICTED_BODY), _EVICTED_BODY)
)
#: A connection idle for less than this (its request is likely on its way: under a flood the loop accepts faster than it
#: reads) is closed to make room only past the cap itself, not past EVICT_AT of it.
YOUNG = 2.0


def fd_reserve(soft: int) -> int:
    """File descriptors left for everything but the listener's connections: a quarter of the limit, within FD_RESERVE."""
    low, high = FD_RESERVE
    return max(low, min(high, soft // 4))


def default_max_connections() -> int:
    """Connections to allow: the soft file-descriptor limit less a reserve, so accept() never runs out first
    (160 under macOS's default `ulimit -n 256`, 768 under 1024)."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, OSError, ValueError):  # no `resource` on Windows
        return 1024
    if soft == resource.RLIM_INFINITY or soft <= 0:
        return 10_000
    return min(10_000, max(soft - fd_reserve(soft), soft // 2))


def backlog(max_connections: int) -> int:
    """Connections the kernel queues for accept(): asyncio's loop accepts this many at once, each a descriptor before
    the cap can close anyone, so it stays within what the reserve leaves (32 at a cap of 160, aiohttp's 128 from 512)."""
    return max(16, min(128, max_connections // 4))


class Slot:
    """What the listener knows of one open connection, to pick which to close first when it is full."""

    __slots__ = ("answering", "deadline", "evicted", "held", "since", "timer")

    def __init__(self, now: float) -> None:
        #: When it last became idle: opened, or answered.
        self.since = now
        #: Loop time at which the listener would close it anyway unless it makes progress: IDLE_TIMEOUT from its start
        #: or its last answer while idle or while its headers trickle in; for a body, see Listener._chunks.
        self.deadline = now + IDLE_TIMEOUT
        #: Its request is being answered (the body is read; the app is being asked): never closed to make room.
        self.answering = False
        #: The body read's timer while a body is arriving: firing it early answers 408 and closes the connection.
        self.timer: asyncio.Timeout | None = None
        #: Bytes of its body taken from the body budget.
        self.held = 0
        #: Closed to make room (its 408 says so).
        self.evicted = False


class CappedServer(web.Server):
    """aiohttp's server with a cap on open connections: past EVICT_AT of it, each new connection closes the slowest other
    one (the one the listener would time out soonest: a body behind the rate, then whoever has waited longest for its
    headers or its next request), never one being answered. The body budget makes room the same way."""

    def __init__(
        self, handler: Any, *, max_connections: int, warnings: RateLimitedWarnings, budget: ByteBudget, grace: float,
        **kwargs: Any,
    ) -> None:  # fmt: skip
        super().__init__(handler, **kwargs)
        self.max_connections = max_connections
        self.evict_at = max(int(max_connections * EVICT_AT), 1)
        self.slots: dict[Any, Slot] = {}
        self.budget = budget
        self._grace = grace
        self._warnings = warnings
        self._evicting = 0  # closed to make room, not gone yet: they still count in self.slots

    def connection_made(self, handler: Any, transport: asyncio.Transport) -> None:
        """Track the connection; past EVICT_AT of the cap, close the slowest others to keep room for new ones."""
        super().connection_made(handler, transport)
        self.slots[handler] = Slot(asyncio.get_running_loop().time())
        self.trim(spare=handler)

    def trim(self, spare: Any = None) -> None:
        """Past EVICT_AT of the cap, close the slowest connections (none younger than YOUNG); past the cap, the oldest
        young ones too. `spare` (the newest) never."""
        # The slots, not aiohttp's own count: it keeps a closed connection until its handler's task ends.
        live = len(self.slots) - self._evicting
        if live > self.evict_at:
            closed = self.make_room(live - self.evict_at, spare=spare)
            if live - closed > self.max_connections:
                closed += self.make_room(live - closed - self.max_connections, spare=spare, young=True)
            self._warnings.warn(
                "connections",
                f"{len(self.slots)} connections open, near the limit of {self.max_connections}: closing the slowest "
                f"(bodies behind the minimum rate, then the longest idle) to keep room for new ones ({closed} now).",
            )

    def connection_lost(self, handler: Any, exc: BaseException | None = None) -> None:
        """Forget the connection."""
        super().connection_lost(handler, exc)
        slot = self.slots.pop(handler, None)
        if slot is not None and slot.evicted:
            self._evicting -= 1

    def busy(self) -> int:
        """Connections receiving a body or being answered."""
        return sum(1 for slot in self.slots.values() if slot.answering or slot.timer is not None)

    def make_room(self, count: int, spare: Any = None, young: bool = False) -> int:
        """Close up to `count` connections, soonest deadline first, none being answered (nor `spare`, nor one idle for
        less than YOUNG unless `young`); how many."""
        settled = asyncio.get_running_loop().time() - YOUNG
        candidates = [(slot.deadline, n, handler) for n, (handler, slot) in enumerate(self.slots.items())
                      if not slot.answering and not slot.evicted and handler is not spare
                      and (young or slot.timer is not None or slot.since < settled)]  # fmt: skip
        victims = heapq.nsmallest(count, candidates)
        for _, _, handler in victims:
            self.evict(handler)
        return len(victims)

    def make_budget_room(self, size: int, spare: Any) -> bool:
        """Whether `size` more bytes fit in the body budget, once stalled bodies (STALLED behind the rate) are closed."""
        budget = self.budget
        if budget.used + size <= budget.limit:
            return True
        cutoff = asyncio.get_running_loop().time() + self._grace - STALLED
        stalled = sorted((slot.deadline, n, handler) for n, (handler, slot) in enumerate(self.slots.items())
                         if slot.held and slot.timer is not None and not slot.evicted and slot.deadline < cutoff
                         and handler is not spare)  # fmt: skip
        closed = 0
        for _, _, handler in stalled:
            if budget.used + size <= budget.limit:
                break
            self.evict(handler)
            closed += 1
        if closed:
            self._warnings.warn(
                "budget room",
                f"request bodies arriving at once fill the body budget ({budget.limit:,} bytes): closing the stalled ones "
                f"({closed} now) to make room for new ones.",
            )
        return budget.used + size <= budget.limit

    def evict(self, handler: Any) -> None:
        """Close one connection to make room: a body being received gets its 408 (and hands its bytes back now)."""
        slot = self.slots[handler]
        slot.evicted = True
        self._evicting += 1
        if slot.timer is not None:  # its handler records the 408 (what it answers goes nowhere: the 408 went already)
            self.budget.give(slot.held)
            slot.held = 0
            slot.timer.reschedule(asyncio.get_running_loop().time())
            if handler.transport is not None:
                handler.transport.write(EVICTED_ANSWER)
        handler.force_close()
