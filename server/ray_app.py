"""sdgate on Ray Serve: the FastAPI app as the Serve ingress, bound to the GPU deployment.

It composes the HTTP layer (server/http) with the Ray workers (server/workers/ray_backend.py), so it sits
above both, beside the CLI.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

import ray
from ray import serve
from ray.serve.handle import DeploymentHandle

from server.http.app import create_app
from server.ops.settings import Settings
from server.workers.ray_backend import INGRESS_DEPLOYMENT, absolute, gpu_deployment

log = logging.getLogger(__name__)


def build_app(settings: Settings) -> Any:
    """The Serve application: the FastAPI ingress bound to the GPU deployment.

    Deployed alone, gpu_deployment() also serves an app built by create_app() outside Serve, as the
    tests' in-process client does.
    """
    # Serve's default of 5 ongoing requests per replica would queue /health and fetch behind 5 sync
    # img2img requests (each held up to SDGATE_SYNC_TIMEOUT); admission is SDGATE_MAX_QUEUE's job.
    @serve.deployment(name=INGRESS_DEPLOYMENT, ray_actor_options={"num_cpus": 0}, num_replicas=1,
                      max_ongoing_requests=2 * settings.max_queue + 100,
                      graceful_shutdown_timeout_s=settings.shutdown_grace)
    @serve.ingress(create_app(absolute(settings)))
    class Ingress:
        def __init__(self, gpu_handle: DeploymentHandle) -> None:
            # The lifespan finds the GPU deployment by name; binding it here makes it part of the app.
            self.gpu_handle = gpu_handle

    return Ingress.bind(gpu_deployment(settings))


def app_builder(args: dict[str, str]) -> Any:
    """For a Serve config file (`serve deploy`, KubeRay's RayService): `import_path: server.ray_app:app_builder`.

    `args` are Settings fields by name (SDGATE_* variables fill in the rest), so one manifest carries the
    whole configuration; the Serve config's own http_options decide the port.
    """
    return build_app(Settings(**args))


def serve_forever(settings: Settings) -> int:
    """`sdgate serve --backend ray`: deploy the app, serve until SIGTERM/SIGINT, then drain and tear down."""
    # "local", not None: None would silently join whatever Ray instance happens to run on this machine.
    ray.init(address=settings.ray_address or "local")
    stop = threading.Event()

    def on_signal(*_: Any) -> None:
        if stop.is_set():  # a second signal, e.g. while a deploy waits for a GPU that never comes
            raise KeyboardInterrupt
        log.info("stopping once the app is deployed; signal again to abort")
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):  # after ray.init, which installs handlers that abort
        signal.signal(signum, on_signal)
    serve.start(http_options={"host": settings.host, "port": settings.port})
    # The proxy may answer before serve.run returns; a SIGTERM meanwhile stops right after the deploy.
    serve.run(build_app(settings), name=settings.ray_app, route_prefix="/")
    log.info("sdgate on Ray Serve at http://%s:%d", settings.host, settings.port)
    stop.wait()
    log.info("stopping: jobs on replicas may finish, jobs still waiting stay queued")
    serve.delete(settings.ray_app)  # graceful: the ingress lifespan and the replicas drain
    ray.shutdown()
    log.info("sdgate stopped: the Serve application is deleted")
    return 0
