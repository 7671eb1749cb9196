"""The `sdgate` command: serve, make-tiny, pull, models, bench, db upgrade.

Start-up must say no fast: every check that can refuse `sdgate serve` (keys, models.yaml, the job database's
revision, preload ids, a busy port) runs before torch, diffusers or transformers are imported, and so do
`--help`, `--version` and the config errors of `models` / `pull`. Heavy imports live inside the functions
that need them, after those checks (tests/unit/test_cli.py checks it).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

EXIT_REFUSED = 2  # a configuration or environment problem, reported as one `sdgate: ...` message


def _fail(message: str) -> int:
    print(f"sdgate: {message}", file=sys.stderr)
    return EXIT_REFUSED


def _settings_error(error: Any) -> str:
    """A pydantic ValidationError of Settings, as the environment variables the operator wrote."""
    parts = [f"SDGATE_{'.'.join(str(p) for p in item['loc']).upper()}: {item['msg']}" for item in error.errors()]
    return "invalid settings: " + "; ".join(parts)


def _settings(overrides: dict[str, Any]) -> Any:
    from server.ops.settings import Settings

    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def _serve(args: argparse.Namespace) -> int:
    # Requests must never download weights; `sdgate pull` is the only path that does (set before HF imports).
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from pydantic import ValidationError

    from pipelines.config import ConfigError
    from server.http.startup import PortUnavailable, check_port_free, validate_startup
    from server.ops.settings import UnsafeSettings

    try:
        settings = _settings({"config": args.config, "host": args.host, "port": args.port,
                              "data_dir": args.data_dir, "backend": args.backend})
    except ValidationError as exc:
        return _fail(_settings_error(exc))
    try:
        # Fail fast, before torch loads: a keyless public host, a bad models.yaml, an old shared job
        # database, unknown preload ids, a port something else listens on.
        validate_startup(settings)
        if settings.backend == "embedded" or settings.ray_address is None:  # a remote Ray cluster binds elsewhere
            check_port_free(settings.host, settings.port)
    except (ConfigError, UnsafeSettings, PortUnavailable) as exc:
        return _fail(str(exc))

    import transformers

    from server.ops.logging_setup import configure_logging

    # transformers prints a multi-line "LOAD REPORT" for every LoRA load; keep the server log readable.
    transformers.logging.set_verbosity_error()
    configure_logging(settings.log_format)
    if settings.backend == "ray":
        try:
            from server.ray_app import serve_forever
        except ImportError:
            return _fail("the ray backend needs the ray extra: pip install 'sdgate[ray]'")
        return serve_forever(settings)  # the ingress runs no model; each GPU replica sets its own torch threads

    import uvicorn

    from pipelines.fast_path import apply_torch_threads
    from pipelines.registry import resolve_device
    from server.http.app import create_app

    # Once, before any model loads (SDGATE_TORCH_THREADS; automatic: half the usable CPUs on a CPU device).
    apply_torch_threads(settings.torch_threads, resolve_device(settings.device))
    # On SIGTERM uvicorn stops accepting and waits for open requests; the lifespan then lets the running job finish.
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_config=None,
                timeout_graceful_shutdown=int(settings.shutdown_grace) or None)
    return 0


def _make_tiny(args: argparse.Namespace) -> int:
    from pipelines.tiny import make_tiny

    print(make_tiny(Path(args.out)))
    return 0


def _registry_paths(args: argparse.Namespace) -> tuple[Path, Path]:
    config = Path(args.config or os.environ.get("SDGATE_CONFIG", "models.yaml"))
    return config, Path(args.data_dir or os.environ.get("SDGATE_DATA_DIR", "data"))


def _pull(args: argparse.Namespace) -> int:
    from pipelines.config import ConfigError, load_config

    config_path, data_dir = _registry_paths(args)
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        return _fail(str(exc))
    print(f"pulling {', '.join(args.ids) if args.ids else f'{len(config.models)} models'} "
          f"from {config_path} (plain-URL files into {data_dir / 'downloads'})", flush=True)
    from pipelines.pull import pull  # imports the model registry, so torch: after the config is known good

    return pull(config, data_dir, args.ids)


def _models(args: argparse.Namespace) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before huggingface_hub is imported: listing never downloads
    from pipelines.config import ConfigError, load_config

    config_path, data_dir = _registry_paths(args)
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        return _fail(str(exc))
    print(f"{'ID':34} {'KIND':12} {'FAMILY':6} {'STATUS':8} {'SIZE':>10}  SOURCE", flush=True)
    from pipelines.pull import list_models  # imports the model registry, so torch: after the config is known good

    for row in list_models(config, data_dir):
        size = f"{row['bytes'] / 1e6:.1f} MB" if row["bytes"] else "-"
        status = "local" if row["local"] else "missing"
        print(f"{row['id']:34} {row['kind']:12} {row['family']:6} {status:8} {size:>10}  {row['source']}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import diffusers
    import transformers

    from server.tools.bench import run

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    diffusers.utils.logging.set_verbosity_error()
    diffusers.utils.logging.disable_progress_bar()
    logging.getLogger().setLevel(logging.WARNING)
    run(args.quick, Path(args.out) if args.out else None, not args.no_gpu)
    return 0


def _db_upgrade(args: argparse.Namespace) -> int:
    from pydantic import ValidationError
    from sqlalchemy.exc import ArgumentError, DBAPIError

    from server.jobs import migrate
    from server.jobs.store import make_engine

    url = args.database_url
    if url is None:
        try:
            settings = _settings({"data_dir": args.data_dir})
        except ValidationError as exc:
            return _fail(_settings_error(exc))
        if settings.database_url is None:
            settings.data_dir.mkdir(parents=True, exist_ok=True)  # the default SQLite file lives there
        url = settings.db_url()
    try:
        engine = make_engine(url)
    except (ArgumentError, ImportError) as exc:  # an unparsable URL, an unknown dialect, a missing driver
        return _fail(f"cannot use the job database URL: {exc}")
    try:
        print(f"job database {engine.url.render_as_string(hide_password=True)}")
        print(f"revision before: {migrate.describe(engine)}")
        migrate.upgrade(engine)
        print(f"revision after: {migrate.current_revision(engine)} (head {migrate.head_revision()})")
    except migrate.UnknownRevision as exc:
        return _fail(str(exc))
    except DBAPIError as exc:  # cannot connect, no permission, ...
        return _fail(f"cannot open the job database: {str(exc.orig).strip().splitlines()[0]}")
    finally:
        engine.dispose()
    return 0


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows "(default: X)" where an option has a fixed default; options resolved from SDGATE_* say so in their help."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False, []) or action.default is argparse.SUPPRESS:
            return action.help
        return super()._get_help_string(action)


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sdgate")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def _build_parser() -> argparse.ArgumentParser:
    from server.ops.settings import Settings  # pydantic only: the defaults below come from the settings model

    def setting(name: str) -> str:
        return f"default: SDGATE_{name.upper()}, else {Settings.model_fields[name].default}"

    registry_config = "models.yaml path; default: SDGATE_CONFIG, else models.yaml"
    registry_data = "data folder (plain-URL downloads); default: SDGATE_DATA_DIR, else data"
    parser = argparse.ArgumentParser(prog="sdgate", description="Self-hosted ModelsLab-compatible img2img server",
                                     formatter_class=_HelpFormatter)
    parser.add_argument("--version", action="version", version=f"sdgate {_package_version()}",
                        help="print the installed sdgate version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_text, description=help_text, formatter_class=_HelpFormatter)

    serve = command("serve", "run the HTTP server (every other setting: SDGATE_* variables, see .env.example)")
    serve.add_argument("--config", type=Path, help=f"models.yaml path; {setting('config')}")
    serve.add_argument("--host", help=f"address to listen on; {setting('host')}")
    serve.add_argument("--port", type=int, help=f"port to listen on; {setting('port')}")
    serve.add_argument("--data-dir", type=Path, help=f"job database and generated files; {setting('data_dir')}")
    serve.add_argument("--backend", choices=["embedded", "ray"],
                       help=f"embedded: this process runs the jobs; ray: GPU replicas on Ray; {setting('backend')}")
    serve.set_defaults(func=_serve)
    tiny = command("make-tiny", "write tiny random-weight test models and their models.yaml")
    tiny.add_argument("--out", required=True, help="folder to write (required)")
    tiny.set_defaults(func=_make_tiny)
    pull = command("pull", "download registered models that are not local yet")
    pull.add_argument("ids", nargs="*", help="registry ids to fetch (models, loras, vaes, ...); none = every model")
    pull.add_argument("--config", help=registry_config)
    pull.add_argument("--data-dir", help=registry_data)
    pull.set_defaults(func=_pull)
    models = command("models", "list registered models and adapters with local/missing status and size")
    models.add_argument("--config", help=registry_config)
    models.add_argument("--data-dir", help=registry_data)
    models.set_defaults(func=_models)
    bench = command("bench", "measure speed as ratios (CPU tiny models; GPU suite when CUDA is present)")
    bench.add_argument("--quick", action="store_true", help="fewer repeats (CI); default: off")
    bench.add_argument("--out", help="write the results as JSON here; default: print only")
    bench.add_argument("--no-gpu", action="store_true", help="skip the GPU suite even when CUDA is present; default: off")
    bench.set_defaults(func=_bench)
    db = command("db", "job database maintenance")
    db_actions = db.add_subparsers(dest="action", required=True, metavar="ACTION")
    db_upgrade = db_actions.add_parser("upgrade", help="bring the job database schema to this version (Alembic)",
                                       description="bring the job database schema to this version (Alembic)",
                                       formatter_class=_HelpFormatter)
    db_upgrade.add_argument("--database-url",
                            help="SQLAlchemy URL; default: SDGATE_DATABASE_URL, else SQLite jobs.db in the data dir")
    db_upgrade.add_argument("--data-dir", type=Path, help=f"where the default SQLite file lives; {setting('data_dir')}")
    db_upgrade.set_defaults(func=_db_upgrade)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Alembic logs one INFO line per built-in plugin when imported: noise before every start-up message.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    try:
        args = _build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, a usage error: argparse has printed; return its code
        return 0 if exc.code is None else exc.code if isinstance(exc.code, int) else EXIT_REFUSED
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
