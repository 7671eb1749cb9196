"""Start-up checks that must answer in about a second: everything here runs before torch, diffusers or
transformers are imported (tests/unit/test_cli.py checks it), so a refused start says no at once.

It lives in the http layer because it reads the job database's revision (server.jobs); server.http.app
re-exports validate_startup for build_state.
"""

from __future__ import annotations

import errno
import socket

from pipelines.config import ConfigError, RegistryConfig, load_config
from server.jobs import migrate
from server.jobs.store import make_engine
from server.ops.settings import Settings, check_keys_required


class PortUnavailable(RuntimeError):
    """The host:port the server would listen on cannot be bound."""


def validate_startup(settings: Settings) -> RegistryConfig:
    """Everything that must stop start-up: a keyless public bind, a bad models.yaml, an old shared job
    database, unknown preload ids."""
    check_keys_required(settings)
    if settings.storage == "s3" and not settings.s3_bucket:
        raise ConfigError("SDGATE_STORAGE=s3 needs SDGATE_S3_BUCKET")
    config = load_config(settings.config)
    if not settings.db_upgrade_at_start():
        engine = make_engine(settings.db_url())
        try:
            migrate.check(engine)
        except (migrate.SchemaOutdated, migrate.UnknownRevision) as exc:
            raise ConfigError(str(exc)) from None
        finally:
            engine.dispose()
    unknown = [m for m in settings.preload_ids() if m not in config.models]
    if unknown:
        raise ConfigError(f"SDGATE_PRELOAD names models that are not in {settings.config}: {unknown}")
    return config


def check_port_free(host: str, port: int) -> None:
    """Bind host:port the way uvicorn will (SO_REUSEADDR, so a port in TIME_WAIT passes), then release it:
    a busy port is refused now rather than after the models and the job database are set up."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortUnavailable(f"port {port} on {host} is already in use (SDGATE_PORT / --port)") from None
            raise PortUnavailable(f"cannot listen on {host} port {port}: {exc.strerror or exc}") from None
