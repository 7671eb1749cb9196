"""AppState: the heavy objects the lifespan builds, reached by routes through typed dependencies."""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from pipelines.postprocess.safety import SafetyFilter
from pipelines.registry import ModelRegistry
from server.dispatch import Dispatcher
from server.gpu_worker import JobQueue
from server.jobs import JobStore
from server.limits import KeyFailureThrottle
from server.metrics import Metrics
from server.settings import Settings
from server.storage import OutputStore
from server.url_guard import UrlGuard


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


StateDep = Annotated[AppState, Depends(get_state)]
