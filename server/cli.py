"""The `sdgate` command: serve, make-tiny, pull, models, bench, db upgrade."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path


def _serve(args: argparse.Namespace) -> int:
    # Requests must never download weights; `sdgate pull` is the only path that does (set before HF imports).
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import transformers
    import uvicorn

    # transformers prints a multi-line "LOAD REPORT" for every LoRA load; keep the server log readable.
    transformers.logging.set_verbosity_error()

    from pipelines.config import ConfigError
    from server.http.app import create_app, validate_startup
    from server.ops.logging_setup import configure_logging
    from server.ops.settings import Settings, UnsafeSettings

    overrides = {k: v for k, v in {"config": args.config, "host": args.host, "port": args.port,
                                   "data_dir": args.data_dir, "backend": args.backend}.items() if v is not None}
    settings = Settings(**overrides)
    try:
        # Fail fast, before binding the port: a keyless public host, a bad models.yaml, unknown preload ids.
        validate_startup(settings)
    except (ConfigError, UnsafeSettings) as exc:
        print(f"sdgate: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_format)
    if settings.backend == "ray":
        try:
            from server.ray_app import serve_forever
        except ImportError:
            print("sdgate: the ray backend needs the ray extra: pip install 'sdgate[ray]'", file=sys.stderr)
            return 2
        return serve_forever(settings)
    # On SIGTERM uvicorn stops accepting and waits for open requests; the lifespan then lets the running job finish.
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_config=None,
                timeout_graceful_shutdown=int(settings.shutdown_grace) or None)
    return 0


def _make_tiny(args: argparse.Namespace) -> int:
    from pipelines.tiny import make_tiny

    print(make_tiny(Path(args.out)))
    return 0


def _pull(args: argparse.Namespace) -> int:
    from pipelines.config import load_config
    from pipelines.pull import pull

    config = load_config(Path(args.config or os.environ.get("SDGATE_CONFIG", "models.yaml")))
    data_dir = Path(args.data_dir or os.environ.get("SDGATE_DATA_DIR", "data"))
    return pull(config, data_dir, args.ids)


def _models(args: argparse.Namespace) -> int:
    from pipelines.config import load_config
    from pipelines.pull import list_models

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    config = load_config(Path(args.config or os.environ.get("SDGATE_CONFIG", "models.yaml")))
    data_dir = Path(args.data_dir or os.environ.get("SDGATE_DATA_DIR", "data"))
    rows = list_models(config, data_dir)
    print(f"{'ID':34} {'KIND':12} {'FAMILY':6} {'STATUS':8} {'SIZE':>10}  SOURCE")
    for row in rows:
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
    from server.jobs import migrate
    from server.jobs.store import make_engine

    url = args.database_url
    if url is None:
        from server.ops.settings import Settings

        overrides = {"data_dir": args.data_dir} if args.data_dir is not None else {}
        settings = Settings(**overrides)
        if settings.database_url is None:
            settings.data_dir.mkdir(parents=True, exist_ok=True)  # the default SQLite file lives there
        url = settings.db_url()
    engine = make_engine(url)
    try:
        print(f"job database {engine.url.render_as_string(hide_password=True)}")
        print(f"revision before: {migrate.describe(engine)}")
        migrate.upgrade(engine)
        print(f"revision after: {migrate.current_revision(engine)} (head {migrate.head_revision()})")
    except migrate.UnknownRevision as exc:
        print(f"sdgate: {exc}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(prog="sdgate", description="Self-hosted ModelsLab-compatible img2img server")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP server")
    serve.add_argument("--config", type=Path)
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--data-dir", type=Path)
    serve.add_argument("--backend", choices=["embedded", "ray"], help="default SDGATE_BACKEND, else embedded")
    serve.set_defaults(func=_serve)
    tiny = sub.add_parser("make-tiny", help="write tiny random-weight test models and their models.yaml")
    tiny.add_argument("--out", required=True)
    tiny.set_defaults(func=_make_tiny)
    pull = sub.add_parser("pull", help="download registered models that are not local yet")
    pull.add_argument("ids", nargs="*")
    pull.add_argument("--config")
    pull.add_argument("--data-dir")
    pull.set_defaults(func=_pull)
    models = sub.add_parser("models", help="list registered models and adapters with local/missing status and size")
    models.add_argument("--config")
    models.add_argument("--data-dir")
    models.set_defaults(func=_models)
    bench = sub.add_parser("bench", help="measure speed as ratios (CPU tiny models; GPU suite when CUDA is present)")
    bench.add_argument("--quick", action="store_true", help="fewer repeats (CI)")
    bench.add_argument("--out", help="write the results as JSON here")
    bench.add_argument("--no-gpu", action="store_true", help="skip the GPU suite even when CUDA is present")
    bench.set_defaults(func=_bench)
    db = sub.add_parser("db", help="job database maintenance")
    db_actions = db.add_subparsers(dest="action", required=True)
    db_upgrade = db_actions.add_parser("upgrade", help="bring the job database schema to this version (Alembic)")
    db_upgrade.add_argument("--database-url", help="SQLAlchemy URL; default SDGATE_DATABASE_URL, else the data dir's")
    db_upgrade.add_argument("--data-dir", type=Path)
    db_upgrade.set_defaults(func=_db_upgrade)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
