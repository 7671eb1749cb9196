"""create_app(): wires routers and error handlers; the lifespan builds and tears down every heavy object."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator
from importlib.metadata import PackageNotFoundError, version

from fastapi import FastAPI
from pydantic import BaseModel

from pipelines.registry import ModelRegistry
from server.api.fields import FetchRequest, KeyOnlyRequest
from server.api.responses import webhook_body
from server.http.absolute_paths import AbsoluteFormPaths
from server.http.docs import add_offline_docs
from server.http.errors import register_error_handlers
from server.http.limits import BodySizeLimit, KeyFailureThrottle
from server.http.routes import fetch, files, generate, models, ops, playground
from server.http.startup import validate_startup
from server.http.state import AppState
from server.io.storage import OutputStore
from server.io.stores import make_store
from server.io.url_guard import UrlGuard
from server.io.webhooks import WebhookSender
from server.jobs.store import JobRow, JobStore, make_engine
from server.ops.logging_setup import log_request
from server.ops.metrics import Metrics
from server.ops.settings import Settings
from server.workers.dispatch import Dispatcher, server_id
from server.workers.local_gpu import build_local_gpu, make_safety
from server.workers.queue import JobQueue

log = logging.getLogger(__name__)


def package_version() -> str:
    try:
        return version("sdgate")
    except PackageNotFoundError:  # running from a checkout that was never installed
        return "0+unknown"


async def _preload(state: AppState) -> None:
    """Load and warm the SDGATE_PRELOAD models on the GPU thread; /ready turns 200 when all are done."""
    for model_id in state.settings.preload_ids():
        state.not_ready_reason = f"loading {model_id}"
        try:
            seconds = await asyncio.wrap_future(state.worker.warm(model_id))
        except Exception as exc:
            state.not_ready_reason = f"preloading {model_id} failed: {exc}"
            log.error("preload of %s failed: %s", model_id, exc)
            return
        log.info("preloaded %s (load %.2fs)", model_id, seconds)
    state.ready, state.not_ready_reason = True, ""


async def _keep_leases(dispatcher: Dispatcher, seconds: float) -> None:
    """Renew this server's leases and take over jobs whose server stopped renewing theirs."""
    while True:
        await asyncio.sleep(seconds / 3)
        try:
            await asyncio.to_thread(dispatcher.heartbeat)
            await asyncio.to_thread(dispatcher.recover, False)
        except Exception:  # a database hiccup must not end the heartbeat
            log.exception("lease upkeep failed")


async def _sweep_temp_forever(store: OutputStore, interval: float) -> None:
    while True:
        await asyncio.to_thread(store.sweep_temp)
        await asyncio.sleep(interval)


def build_state(settings: Settings) -> AppState:
    """Everything a running server holds; models load on first use or through SDGATE_PRELOAD."""
    config = validate_startup(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    metrics = Metrics()
    jobs = JobStore(make_engine(settings.db_url()), upgrade=settings.db_upgrade_at_start())
    store = make_store(settings)
    # With the Ray backend the detector runs on the replicas; loading it here too tells routes it exists.
    safety = make_safety(settings)
    worker: JobQueue
    if settings.backend == "ray":
        from server.workers.ray_backend import RayWorker  # ray is an optional extra

        if settings.storage == "local" or settings.database_url is None:
            log.warning("Ray backend with local files or SQLite: every replica must run on this node "
                        "(or share its data dir); set SDGATE_DATABASE_URL and SDGATE_STORAGE=s3 for a cluster")

        worker = RayWorker.connect(settings, jobs, metrics)
        # The ingress never loads a model: its registry only answers model-id lookups.
        registry = ModelRegistry(config, settings.data_dir, "cpu")
    else:
        worker = build_local_gpu(settings, config, jobs, store, safety, metrics)
        registry = worker.registry
    metrics.watch_queue(worker.depth)
    owner = server_id(settings.data_dir)
    dispatcher = Dispatcher(jobs, worker, owner, settings.max_queue, settings.max_attempts, settings.lease_seconds)
    guard = UrlGuard(settings.allow_private_urls, settings.fetch_timeout, settings.max_download_bytes)
    throttle = KeyFailureThrottle(settings.key_failures_per_minute)
    return AppState(settings, registry, jobs, store, worker, safety, dispatcher, metrics, guard, throttle)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        assert settings is not None
        state = build_state(settings)
        app.state.sdgate = state
        state.worker.start()
        state.dispatcher.recover()

        def body_for(row: JobRow) -> dict:
            return webhook_body(row, state.store, state.settings.inline_base64)

        webhook_guard = dataclasses.replace(state.url_guard, timeout=state.settings.webhook_timeout)
        sender = WebhookSender(state.jobs, body_for, state.settings, state.metrics, webhook_guard)
        tasks = [
            asyncio.create_task(_sweep_temp_forever(state.store, state.settings.sweep_interval)),
            asyncio.create_task(sender.run_forever()),
            asyncio.create_task(_preload(state)),
            asyncio.create_task(_keep_leases(state.dispatcher, state.settings.lease_seconds)),
        ]
        log.info("sdgate ready: %d models registered, device %s", len(state.registry.config.models), state.registry.device)
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            # The running job may finish within the grace period; queued jobs stay queued for the next start.
            await asyncio.to_thread(state.worker.stop, state.settings.shutdown_grace)

    # docs_url/redoc_url None: FastAPI's pages load their JS from a CDN; add_offline_docs serves packaged copies.
    app = FastAPI(title="sdgate", version=package_version(), lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Self-hosted, drop-in replacement for the ModelsLab image API.")
    add_offline_docs(app)
    register_error_handlers(app)
    app.middleware("http")(log_request)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(AbsoluteFormPaths)
    for module in (generate, fetch, models, files, ops, playground):
        app.include_router(module.router)
    _document_request_models(app, (*generate.REQUEST_MODELS, FetchRequest, KeyOnlyRequest))
    return app


def _document_request_models(app: FastAPI, request_models: tuple[type[BaseModel], ...]) -> None:
    """Adds the request models that routes validate themselves to the OpenAPI document's components."""
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = build()
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in request_models:
                components[model.__name__] = model.model_json_schema(ref_template="#/components/schemas/{model}")
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
