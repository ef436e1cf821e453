"""engine/worker.py: LoopKick wakes an idle worker thread once per event-loop iteration, with a real thread."""

from __future__ import annotations

import asyncio
import threading
import time

from comethook_cli.engine.worker import LoopKick


class Worker:
    """A worker thread that takes everything queued at once, as the history's writer and the output stream's do."""

    def __init__(self) -> None:
        self.queue: list[int] = []
        self.batches: list[list[int]] = []
        self.stopping = False
        self.condition = threading.Condition(threading.Lock())
        self.kick = LoopKick(self.condition, lambda: bool(self.queue))
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            with self.condition:
                self.kick.wait(lambda: bool(self.queue) or self.stopping)
                if not self.queue:
                    return
                batch, self.queue = self.queue, []
                self.batches.append(batch)

    def put(self, item: int) -> None:
        with self.condition:
            self.queue.append(item)
            self.kick.soon()

    def settle(self, taken: int) -> None:
        """Wait (generously) until the worker took `taken` items and sleeps again."""
        deadline = time.monotonic() + 30
        while (sum(map(len, self.batches)) < taken or not self.kick.idle) and time.monotonic() < deadline:
            time.sleep(0.005)

    def stop(self) -> None:
        with self.condition:
            self.stopping = True
            self.condition.notify()
        self.thread.join(10)


async def test_everything_queued_in_one_loop_iteration_wakes_the_idle_worker_once() -> None:
    worker = Worker()
    try:
        await asyncio.to_thread(worker.settle, 0)
        for item in range(100):  # one iteration: no await in between
            worker.put(item)
        assert worker.batches == []  # not woken yet: the kick waits for the iteration's end
        await asyncio.to_thread(worker.settle, 100)
        assert worker.batches == [list(range(100))]
        worker.put(100)  # the next iteration's work wakes it again
        await asyncio.to_thread(worker.settle, 101)
        assert worker.batches[1:] == [[100]]
    finally:
        worker.stop()
    assert not worker.thread.is_alive()


def test_work_queued_outside_an_event_loop_wakes_the_worker_at_once() -> None:
    worker = Worker()
    try:
        worker.settle(0)
        worker.put(1)  # no loop runs here: nobody would run a scheduled kick
        worker.settle(1)
        assert worker.batches == [[1]]
    finally:
        worker.stop()


def test_now_wakes_only_a_sleeping_worker_with_work_waiting() -> None:
    worker = Worker()
    try:
        worker.settle(0)
        with worker.condition:
            worker.kick.now()  # nothing queued: it sleeps on
            assert worker.kick.idle
            worker.queue.append(7)
            worker.kick.now()
            assert not worker.kick.idle
        worker.settle(1)
        assert worker.batches == [[7]]
    finally:
        worker.stop()
