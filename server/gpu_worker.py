"""GpuWorker: one thread per device running jobs one at a time from a bounded queue.

GPU work never runs on the event loop; routes get a concurrent Future per job and wait on it with a
timeout. A full queue is refused at submit time (QueueFull) instead of making clients wait unboundedly.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


class QueueFull(Exception):
    pass


class JobFailed(Exception):
    """A job failure that was already handled and recorded; the message is safe to show to the client."""

    def __init__(self, message: str, http_status: int = 200) -> None:
        super().__init__(message)
        self.http_status = http_status


@dataclass
class WorkItem:
    job_id: int
    payload: Any
    future: Future = field(default_factory=Future)


@dataclass
class _Call:
    """Non-job work that must run on the GPU thread (model loads, warm-up), in queue order."""

    fn: Callable[[], Any]
    future: Future = field(default_factory=Future)


_STOP = object()


class GpuWorker:
    """Runs `execute(item)` for each submitted item on a dedicated thread; results land in item.future."""

    def __init__(self, execute: Callable[[WorkItem], Any], name: str = "gpu-worker") -> None:
        self._execute = execute
        # Unbounded here: admission (SDGATE_MAX_QUEUE) is the Dispatcher's job, and jobs re-queued after a
        # restart must all fit whatever the limit.
        self._queue: queue.Queue[Any] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._recent: deque[float] = deque(maxlen=20)
        self._running = False

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Let the running job finish; queued items stay unrun (their rows remain 'queued')."""
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._queue.put(_STOP)
        self._thread.join(timeout)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def submit(self, item: WorkItem) -> Future:
        self._queue.put_nowait(item)
        return item.future

    def call(self, fn: Callable[[], Any]) -> Future:
        """Run fn on the worker thread after the jobs queued before it."""
        item = _Call(fn)
        self._queue.put_nowait(item)
        return item.future

    def depth(self) -> int:
        """Jobs waiting plus the one running (model loads queued with call() count too)."""
        return self._queue.qsize() + (1 if self._running else 0)

    def average_seconds(self) -> float:
        return sum(self._recent) / len(self._recent) if self._recent else 5.0

    def eta(self, ahead: int | None = None) -> float:
        """Seconds until a job submitted now (or with `ahead` jobs before it) should be done."""
        ahead = self.depth() if ahead is None else ahead
        return round(self.average_seconds() * (ahead + 1), 2)

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            if isinstance(item, _Call):
                try:
                    item.future.set_result(item.fn())
                except BaseException as exc:  # reported to whoever waits on the future
                    item.future.set_exception(exc)
                continue
            self._running = True
            started = time.perf_counter()
            try:
                item.future.set_result(self._execute(item))
            except JobFailed as exc:
                log.info("job %s failed: %s", item.job_id, exc)
                item.future.set_exception(exc)
            except BaseException as exc:  # the worker must survive any job failure
                log.exception("job %s failed outside the pipeline", item.job_id)
                item.future.set_exception(exc)
            finally:
                self._recent.append(time.perf_counter() - started)
                self._running = False
