"""AppState: the heavy objects the lifespan builds, reached by routes through typed dependencies."""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field

from fastapi import Request

from pipelines.postprocess.safety import SafetyFilter
from pipelines.registry import ModelRegistry
from server.http.limits import KeyFailureThrottle
from server.io.storage import OutputStore
from server.io.url_guard import UrlGuard
from server.jobs.store import JobStore
from server.ops.metrics import Metrics
from server.ops.settings import Settings
from server.workers.dispatch import Dispatcher
from server.workers.queue import JobQueue


@dataclass
class AppState:
    settings: Settings
    registry: ModelRegistry
    jobs: JobStore
    store: OutputStore
    worker: JobQueue
    safety: SafetyFilter | None
    dispatcher: Dispatcher
    metrics: Metrics
    url_guard: UrlGuard
    key_throttle: KeyFailureThrottle
    ready: bool = False
    not_ready_reason: str = "starting"
    reloads: dict[str, Future] = field(default_factory=dict)


def get_state(request: Request) -> AppState:
    return request.app.state.sdgate

