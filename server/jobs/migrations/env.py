"""Alembic environment for the job database (SQLAlchemy Core, no alembic.ini).

Run through server.jobs.migrate, which passes an open connection in config.attributes["connection"].
No fileConfig(): there is no ini file, and it would reset the application's logging.
"""

from __future__ import annotations

from alembic import context

from server.jobs.store import metadata

config = context.config


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run the job database migrations through server.jobs.migrate (it passes a connection)")
    # render_as_batch: SQLite cannot ALTER most things in place; batch mode copies the table when it must.
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("offline (--sql) migrations are not supported for the job database")
run_migrations_online()
