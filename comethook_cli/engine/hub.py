"""The event hub: the durable sink first, then every subscriber, none of which can hold up CometChat.

`commit()` is awaited before an answer goes out (acknowledged means stored); when the sink cannot store an
exchange it says so (a `NotStored`), and the listener refuses the delivery (503) instead of acknowledging
something it lost. `publish()` never blocks and never raises: inline
subscribers are plain callables that must not block (the terminal and NDJSON outputs only format and
append to a background stream, outputs/stream.py), most of them a models.RecordHandler, which takes the closed
set of records (models.HubRecord: Exchange, Skipped, Rejection, Health) by type in one place; queue subscribers get a
bounded asyncio.Queue each,
and one that falls behind is cut off and marked `overflowed` (it must reload from the history) instead
of growing without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from comethook_cli.models import Exchange, Health, HubRecord, RecordHandler, Rejection, Skipped, without_secrets

Subscriber = Callable[[HubRecord], None]
#: Records a queue subscriber may fall behind by before it is cut off (it then reloads from history).
DEFAULT_QUEUE_SIZE = 1000


class Sink(Protocol):
    """Where exchanges are stored before they are answered (the history writer)."""

    async def record(self, exchange: Exchange) -> None:
        """Store one exchange; return once it is durable."""


@dataclass(frozen=True)
class NotStored:
    """Why the durable sink could not store an exchange: it must not be acknowledged."""

    exchange_id: str
    reason: str


class QueueSubscription:
    """A bounded queue of records for one asynchronous consumer (a Python caller, an SSE client)."""

    def __init__(self, hub: Hub, maxsize: int) -> None:
        self._hub = hub
        self.queue: asyncio.Queue[HubRecord] = asyncio.Queue(maxsize)
        self.overflowed = False

    def offer(self, record: HubRecord) -> None:
        """Queue a record; on overflow stop listening and say so (the consumer must reload)."""
        try:
            self.queue.put_nowait(record)
        except asyncio.QueueFull:
            self.overflowed = True
            self.close()

    async def get(self) -> HubRecord:
        """The next record."""
        return await self.queue.get()

    def close(self) -> None:
        """Receive nothing more."""
        self._hub.unsubscribe(self.offer)


class BatchSubscription:
    """Records for one asynchronous consumer, taken a batch at a time. A publish only appends; the waiting consumer
    is woken once however many records arrive before it runs (a queue wakes it once a record, which an event
    stream per open page pays for every delivery under a flood). Past `maxsize` waiting records it is cut off
    and marked `overflowed`, as a queue subscriber is."""

    def __init__(self, hub: Hub, maxsize: int) -> None:
        self._hub = hub
        self.maxsize = maxsize
        self.overflowed = False
        self.closed = False
        self._pending: list[HubRecord] = []
        self._waiter: asyncio.Future[None] | None = None

    def offer(self, record: HubRecord) -> None:
        """Keep a record for the next batch; past maxsize, stop listening and say so (the consumer must reload)."""
        if len(self._pending) >= self.maxsize:
            self.overflowed = True
            self.close()
            return
        self._pending.append(record)
        self._wake()

    async def batch(self) -> list[HubRecord]:
        """Every record published since the last batch, once there is one (an empty list once closed)."""
        while not self._pending and not self.closed:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        taken, self._pending = self._pending, []
        return taken

    def close(self) -> None:
        """Receive nothing more; a consumer waiting for a batch gets what is left, then an empty one."""
        self.closed = True
        self._hub.unsubscribe(self.offer)
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


class Hub:
    """One place every record goes through: the listener, `send` and `check` publish here."""

    def __init__(self, sink: Sink | None = None, on_warning: Callable[[str], None] | None = None) -> None:
        self.sink = sink
        self.on_warning = on_warning
        #: Which exchanges are stored and published as events (`listen --events`); the others are published as Skipped.
        self.keep: Callable[[Exchange], bool] | None = None
        #: Whether the sink stores credentials in the query exactly (`listen --keep-secrets`); else they are redacted
        #: first (models.without_secrets). Every display redacts them either way.
        self.keep_secrets = False
        self._subscribers: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber | RecordHandler) -> Callable[[], None]:
        """Add an inline subscriber (it must not block), a RecordHandler or a function; returns the function that removes it."""
        if isinstance(subscriber, RecordHandler):
            subscriber = subscriber.handle
        self._subscribers.append(subscriber)
        return lambda: self.unsubscribe(subscriber)

    def subscribe_queue(self, maxsize: int = DEFAULT_QUEUE_SIZE) -> QueueSubscription:
        """A bounded queue that receives every record published from now on."""
        subscription = QueueSubscription(self, maxsize)
        self._subscribers.append(subscription.offer)
        return subscription

    def subscribe_batches(self, maxsize: int = DEFAULT_QUEUE_SIZE) -> BatchSubscription:
        """Like subscribe_queue(), taken a batch at a time (one wake-up for all that arrived meanwhile)."""
        subscription = BatchSubscription(self, maxsize)
        self._subscribers.append(subscription.offer)
        return subscription

    def unsubscribe(self, subscriber: Subscriber) -> None:
        """Remove a subscriber (nothing happens when it is already gone)."""
        if subscriber in self._subscribers:
            self._subscribers.remove(subscriber)

    async def commit(self, exchange: Exchange) -> NotStored | None:
        """Store an exchange durably before it is answered: None once it is stored (or nothing is to store it), else
        why it is not. Warning about it is the caller's (the listener counts its refusals in one rate-limited line)."""
        if self.sink is None or (self.keep is not None and not self.keep(exchange)):
            return None
        try:
            redact = not self.keep_secrets and isinstance(exchange, Exchange)
            await self.sink.record(without_secrets(exchange) if redact else exchange)
        except Exception as error:  # one exchange's failure must never cost another its answer
            reason = getattr(error, "reason", None) or getattr(error, "message", None) or f"{type(error).__name__}: {error}"
            return NotStored(exchange.id, str(reason))
        return None

    def publish(self, record: Exchange | Rejection | Health) -> None:
        """Hand a record to every subscriber (an exchange `keep` leaves out as Skipped). One that raises costs that
        record its output there, with a warning, and nothing else: the other subscribers still get it, and it still
        gets the next one."""
        published: HubRecord = record
        if self.keep is not None and isinstance(record, Exchange) and not self.keep(record):
            published = Skipped(record)
        for subscriber in tuple(self._subscribers):
            try:
                subscriber(published)
            except Exception as error:
                label = published.id if isinstance(published, Exchange) else type(published).__name__
                self.warn(f"could not show {label}: {type(error).__name__}: {error}")

    def warn(self, message: str) -> None:
        """A warning for whoever shows warnings (a failing warning display is not worth an answer either)."""
        if self.on_warning is not None:
            with contextlib.suppress(Exception):
                self.on_warning(message)
