"""GpuWorker: one thread per device running jobs from a queue, optionally several compatible jobs at once.

GPU work never runs on the event loop; routes get a concurrent Future per job and wait on it with a
timeout. Admission (SDGATE_MAX_QUEUE) is the Dispatcher's; the queue itself is unbounded so that jobs
re-queued after a restart always fit.

Cross-request batching: after taking a job, the worker takes the queued jobs with the same batch key
(same model, adapters, scheduler, steps, strength, guidance, size) and runs them as one pipeline call.
Only when other requests are arriving (already queued, or still being admitted: see `incoming`) does it
wait up to `batch_window` seconds for them, so a lone request is never delayed at all.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterator
from concurrent.futures import Future
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger(__name__)


class QueueFull(Exception):
    pass


class JobFailed(Exception):
    """A job failure that was already handled and recorded; the message is safe to show to the client."""

    def __init__(self, message: str, http_status: int = 200) -> None:
        super().__init__(message)
        self.http_status = http_status


class JobMoved(Exception):
    """Another server took the job over (its lease lapsed here); the job goes on there, not failed."""


@dataclass
class WorkItem:
    """One job on its way to a GPU; `owner` is the server holding its lease (it must still hold it to run)."""

    job_id: int
    payload: Any
    owner: str | None = None
    future: Future = field(default_factory=Future)
    # Higher runs first: it is queued ahead of every waiting job of a lower priority (realtime endpoints).
    priority: int = 0


@dataclass
class _Call:
    """Non-job work that must run on the GPU thread (model loads, warm-up), in queue order."""

    fn: Callable[[], Any]
    future: Future = field(default_factory=Future)


@dataclass
class Batching:
    """How to group jobs: `key(item)` (None = run alone), `size(item)` images, at most `max_images` per call."""

    key: Callable[[WorkItem], Hashable | None]
    size: Callable[[WorkItem], int]
    window: float = 0.0
    max_images: int = 8


_STOP = object()


class Throughput:
    """Recent seconds per job, for the eta and queue_time the hosted API reports."""

    def __init__(self) -> None:
        self._recent: deque[float] = deque(maxlen=20)

    def depth(self) -> int:
        raise NotImplementedError

    def record(self, seconds_per_job: float) -> None:
        self._recent.append(seconds_per_job)

    def average_seconds(self) -> float:
        return sum(self._recent) / len(self._recent) if self._recent else 5.0

    def eta(self, ahead: int | None = None) -> float:
        """Seconds until a job submitted now (or with `ahead` jobs before it) should be done."""
        ahead = self.depth() if ahead is None else ahead
        return round(self.average_seconds() * (ahead + 1), 2)

class GpuWorker(Throughput):
    """Runs `execute(items)` on a dedicated thread; `execute` returns one result or exception per item."""

    def __init__(self, execute: Callable[[list[WorkItem]], list[Any]], batching: Batching | None = None,
                 name: str = "gpu-worker") -> None:
        super().__init__()
        self._execute = execute
        self._batching = batching
        self._items: deque[Any] = deque()
        self._ready = threading.Condition()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._batch: list[WorkItem] = []  # the jobs running now
        self._incoming = 0

    @contextmanager
    def incoming(self) -> Iterator[None]:
        """Marks a request that is being admitted (fetching and decoding its image) and will submit soon."""
        with self._ready:
            self._incoming += 1
        try:
            yield
        finally:
            with self._ready:
                self._incoming -= 1
                self._ready.notify_all()

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Let the running job finish; queued items stay unrun (their rows remain 'queued')."""
        with self._ready:
            self._items.clear()
            self._items.append(_STOP)
            self._ready.notify_all()
        self._thread.join(timeout)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def submit(self, item: WorkItem) -> Future:
        self._put(item)
        return item.future

    def cancel(self, item: WorkItem) -> bool:
        """Take a job back out of the queue; False once it has started (it then runs to the end)."""
        with self._ready:
            for index, queued in enumerate(self._items):
                if queued is item:
                    del self._items[index]
                    return True
            return False

    def call(self, fn: Callable[[], Any]) -> Future:
        """Run fn on the worker thread after the jobs queued before it."""
        item = _Call(fn)
        self._put(item)
        return item.future

    def _put(self, item: Any) -> None:
        with self._ready:
            position = len(self._items)
            if isinstance(item, WorkItem) and item.priority > 0:
                # Ahead of the first waiting job of a lower priority; model loads (_Call) keep their place.
                position = next((i for i, queued in enumerate(self._items)
                                 if isinstance(queued, WorkItem) and queued.priority < item.priority), position)
            self._items.insert(position, item)
            self._ready.notify_all()

    def held_ids(self) -> set[int]:
        """Jobs queued or running here: the ones whose leases the heartbeat renews."""
        with self._ready:
            return {item.job_id for item in [*self._items, *self._batch] if isinstance(item, WorkItem)}

    def depth(self) -> int:
        """Jobs waiting plus those running (model loads queued with call() count too)."""
        with self._ready:
            return len(self._items) + len(self._batch)

    def _take(self) -> Any:
        with self._ready:
            while not self._items:
                self._ready.wait()
            item = self._items.popleft()
            if isinstance(item, WorkItem):
                self._batch = [item]
            return item

    def _gather(self, first: WorkItem) -> list[WorkItem]:
        """first, plus compatible queued jobs that arrive within the batch window."""
        batching = self._batching
        if batching is None:
            return [first]
        key = batching.key(first)
        if key is None:
            return [first]
        batch, images = [first], batching.size(first)
        deadline = time.monotonic() + batching.window
        with self._ready:
            while True:
                for item in list(self._items):
                    if item is _STOP:
                        return batch
                    if isinstance(item, WorkItem) and batching.key(item) == key:
                        if images + batching.size(item) > batching.max_images:
                            return batch
                        self._items.remove(item)
                        batch.append(item)
                        images += batching.size(item)
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (len(batch) == 1 and self._incoming == 0):
                    return batch
                self._ready.wait(remaining)

    def _loop(self) -> None:
        while True:
            item = self._take()
            if item is _STOP:
                return
            if isinstance(item, _Call):
                try:
                    item.future.set_result(item.fn())
                except BaseException as exc:  # reported to whoever waits on the future
                    item.future.set_exception(exc)
                continue
            batch = self._gather(item)
            with self._ready:
                self._batch = batch
            started = time.perf_counter()
            try:
                outcomes = self._execute(batch)
            except BaseException as exc:  # the worker must survive any failure
                log.exception("jobs %s failed outside the pipeline", [i.job_id for i in batch])
                outcomes = [exc] * len(batch)
            for work, outcome in zip(batch, outcomes, strict=True):
                if isinstance(outcome, BaseException):
                    work.future.set_exception(outcome)
                else:
                    work.future.set_result(outcome)
            self.record((time.perf_counter() - started) / len(batch))
            with self._ready:
                self._batch = []


class JobQueue(Protocol):
    """What the Dispatcher and the routes need from a backend: LocalGpu here, RayWorker on a Ray cluster."""

    device: str

    def incoming(self) -> AbstractContextManager[None]: ...
    def start(self) -> None: ...
    def stop(self, timeout: float = 30.0) -> None: ...
    def is_alive(self) -> bool: ...
    def submit(self, item: WorkItem) -> Future: ...
    def depth(self) -> int: ...
    def held_ids(self) -> set[int]: ...
    def average_seconds(self) -> float: ...
    def eta(self, ahead: int | None = None) -> float: ...
    def warm(self, model_id: str) -> Future: ...
    def reload(self, model_id: str) -> Future: ...
    def loaded_ids(self) -> list[str]: ...
    def replicas(self) -> list[dict]: ...
