"""Session fixtures: tiny models built once, an in-process app, a loopback image server, a live `sdgate serve`.

Folder = tier: tests/unit (no torch work), tests/integration (real pipelines + the app in-process),
tests/e2e (real server processes over real sockets).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Ray Serve's handles and replicas report load every 10 s by default; the autoscaling test needs seconds.
os.environ.setdefault("RAY_SERVE_HANDLE_AUTOSCALING_METRIC_PUSH_INTERVAL_S", "0.5")
# moto's S3 accepts any credentials and boto3 needs some to sign with; set before Ray starts its workers.
for _name, _value in (("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test"), ("AWS_DEFAULT_REGION", "us-east-1")):
    os.environ.setdefault(_name, _value)
os.environ.setdefault("RAY_SERVE_REPLICA_AUTOSCALING_METRIC_PUSH_INTERVAL_S", "0.5")

import base64
import contextlib
import http.server
import io
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

from pipelines.tiny import make_tiny
from server.http.app import create_app
from server.jobs import migrate
from server.jobs.store import make_engine
from server.ops.settings import Settings

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        tier = Path(str(item.fspath)).parent.name
        if tier in ("unit", "integration", "e2e"):
            item.add_marker(getattr(pytest.mark, tier))


def png_bytes(size: tuple[int, int] = (32, 32), color: tuple[int, int, int] = (180, 90, 40)) -> bytes:
    image = Image.new("RGB", size, color)
    # A gradient, so that img2img has structure to keep and resizing is visible.
    for x in range(size[0]):
        for y in range(size[1]):
            image.putpixel((x, y), ((color[0] + 7 * x) % 256, (color[1] + 5 * y) % 256, color[2]))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiny")
    make_tiny(out)
    return out


class ImageServer:
    """A loopback HTTP server standing in for the internet: serves files from `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        handler = lambda *a, **kw: _QuietHandler(*a, directory=str(root), **kw)  # noqa: E731
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"

    def add(self, name: str, data: bytes) -> str:
        (self.root / name).write_bytes(data)
        return self.url(name)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="session")
def image_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ImageServer]:
    server = ImageServer(tmp_path_factory.mktemp("www"))
    server.add("init.png", png_bytes())
    server.add("init-40x36.png", png_bytes((40, 36)))
    server.add("not-an-image.png", b"this is text, not a picture")
    noise = io.BytesIO()
    Image.frombytes("RGB", (64, 64), os.urandom(64 * 64 * 3)).save(noise, format="PNG")
    server.add("truncated.png", noise.getvalue()[:4000])  # noise does not compress, so this cuts pixel data
    yield server
    server.httpd.shutdown()


def make_settings(tiny_dir: Path, data_dir: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "config": tiny_dir / "models.yaml",
        "data_dir": data_dir,
        "public_url": "http://testserver",
        "allow_private_urls": True,
        "device": "cpu",
        "max_loaded_models": 3,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """The PostgreSQL that scripts/test starts, with empty job tables."""
    url = os.environ.get("SDGATE_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("SDGATE_TEST_POSTGRES_URL is not set (scripts/test starts PostgreSQL and sets it)")
    _drop_job_tables(url)
    migrate.upgrade(make_engine(url))  # what an operator's `sdgate db upgrade` does before servers start
    yield url
    _drop_job_tables(url)


def _drop_job_tables(url: str) -> None:
    """Back to an empty database: the job tables and Alembic's version table, so the next store migrates."""
    from sqlalchemy import text

    from server.jobs.store import metadata

    engine = make_engine(url)
    metadata.drop_all(engine)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on loopback."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def bucket(s3_endpoint: str) -> str:
    import boto3

    name = f"outputs-{time.time_ns()}"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[None]:
    """One local Ray instance for the session (about 4 s); each test deploys its own GPU replicas on it."""
    import ray
    from ray import serve

    # The replicas import torch and the tiny models' pipelines: 0 CPUs reserved, so two fit on 2 cores.
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    serve.shutdown()
    ray.shutdown()


@contextlib.contextmanager
def ray_app_client(tiny_dir: Path, data_dir: Path, replicas: int = 1, **overrides: object) -> Iterator[TestClient]:
    """The app with SDGATE_BACKEND=ray in-process, its jobs run by `replicas` CPU replicas on the session's Ray."""
    from ray import serve

    from server.workers.ray_backend import gpu_deployment

    values: dict[str, object] = {"backend": "ray", "ray_num_gpus": 0, "ray_num_cpus": 0,
                                 "ray_min_replicas": replicas, "ray_max_replicas": replicas}
    settings = make_settings(tiny_dir, data_dir, **(values | overrides))
    serve.run(gpu_deployment(settings), name=settings.ray_app, route_prefix=None)
    try:
        with TestClient(create_app(settings)) as test_client:
            yield test_client
    finally:
        serve.delete(settings.ray_app)


OpenApp = Callable[..., contextlib.AbstractContextManager[TestClient]]


@pytest.fixture(params=["embedded", "ray"])
def open_app(request: pytest.FixtureRequest, tiny_dir: Path) -> OpenApp:
    """`open_app(data_dir, **settings)` opens an app client on each backend in turn (the jobs suite runs on both)."""
    if request.param == "ray":
        request.getfixturevalue("ray_cluster")

        def on_ray(data_dir: Path, **overrides: object) -> contextlib.AbstractContextManager[TestClient]:
            return ray_app_client(tiny_dir, data_dir, **overrides)

        return on_ray

    def embedded(data_dir: Path, **overrides: object) -> contextlib.AbstractContextManager[TestClient]:
        return TestClient(create_app(make_settings(tiny_dir, data_dir, **overrides)))

    return embedded


@pytest.fixture(scope="session")
def client(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The real app, in-process, on a private-URL-allowed config so it can reach the loopback image server."""
    app = create_app(make_settings(tiny_dir, tmp_path_factory.mktemp("data")))
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def body(image_server: ImageServer) -> dict:
    """A small, fast request; tests change what they exercise."""
    return {
        "key": "any",
        "model_id": "tiny-sd15",
        "prompt": "a red cat",
        "init_image": image_server.url("init.png"),
        "num_inference_steps": "4",
        "seed": "1234",
    }


def b64_png(size: tuple[int, int] = (32, 32)) -> str:
    return base64.b64encode(png_bytes(size)).decode()


class LiveServer:
    def __init__(self, port: int, process: subprocess.Popen, log: Path) -> None:
        self.port = port
        self.process = process
        self.log = log
        self.url = f"http://127.0.0.1:{port}"


def sdgate_command() -> str:
    return shutil.which("sdgate", path=str(Path(sys.executable).parent)) or "sdgate"


def start_server(args: list[str], env: dict[str, str], port: int, log: Path, timeout: float = 90) -> LiveServer:
    """`sdgate serve` as a real process, output to `log` (a pipe could fill and stall it); waits for /health."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sdgate_command(), "serve", "--port", str(port), *args],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: a crash test can kill it with every child
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sdgate serve exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return LiveServer(port, process, log)
        except httpx.HTTPError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError("sdgate serve did not become healthy")


@pytest.fixture(scope="session")
def live_server(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data = tmp_path_factory.mktemp("live")
    server = start_server(
        ["--config", str(tiny_dir / "models.yaml"), "--data-dir", str(data)],
        {"SDGATE_ALLOW_PRIVATE_URLS": "1", "SDGATE_DEVICE": "cpu", "OMP_NUM_THREADS": "1"},
        free_port(),
        data / "server.log",
    )
    yield server
    server.process.terminate()
    server.process.wait(timeout=30)


class WebhookReceiver:
    """A loopback HTTP endpoint that records every POST and answers with the next status in `statuses`."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.statuses = list(statuses or [])
        self.received: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"

    def wait_for(self, count: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} webhook POSTs, got {len(self.received)}")
            time.sleep(0.05)

    def close(self) -> None:
        self.httpd.shutdown()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    hook = WebhookReceiver()
    yield hook
    hook.close()
