"""Schema versions of the job database (Alembic, migrations shipped in server/jobs/migrations/).

`upgrade` brings any database to the newest revision: a fresh one gets every revision, one made by v0.1
(its tables came from create_all and carry no version) is first recorded as revision 0001. Several
processes may upgrade one fresh database at once: each upgrade is one transaction under a lock where the
database has one (SQLite's write lock, a PostgreSQL advisory lock), and a loser retries and finds it done.
"""

from __future__ import annotations

import functools
import logging
import time

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection, inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

log = logging.getLogger(__name__)

SCRIPT_LOCATION = "server.jobs:migrations"
VERSION_TABLE = "alembic_version"  # Alembic's default
V01_REVISION = "0001"  # the schema v0.1's create_all made
ATTEMPTS = 8
_PG_LOCK_KEY = 0x5D6A7E_0001  # pg_advisory_xact_lock key: one migration at a time per PostgreSQL database


class SchemaOutdated(RuntimeError):
    """The job database is older than this server (started with upgrade off)."""


class UnknownRevision(RuntimeError):
    """The job database is at a revision this server does not know: a newer sdgate upgraded it."""


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@functools.cache
def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config())


def head_revision() -> str:
    head = _script().get_current_head()
    assert head is not None
    return head


def _current(conn: Connection) -> str | None:
    # Read directly rather than through MigrationContext, which logs two INFO lines every time it is made.
    if not inspect(conn).has_table(VERSION_TABLE):
        return None
    versions = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    if len(versions) > 1:
        raise RuntimeError(f"the job database has several schema versions ({', '.join(versions)}); expected one")
    return versions[0] if versions else None


def current_revision(engine: Engine) -> str | None:
    """The database's revision; None for an empty database and for one made by v0.1 (no version table)."""
    with engine.connect() as conn:
        return _current(conn)


def describe(engine: Engine) -> str:
    """The revision for people: the id, or why there is none."""
    with engine.connect() as conn:
        revision = _current(conn)
        if revision is None:
            return "none (made by v0.1)" if inspect(conn).has_table("jobs") else "none (empty)"
    return revision


def check(engine: Engine) -> None:
    """Raise SchemaOutdated unless the database is at this server's head revision."""
    current, head = current_revision(engine), head_revision()
    if current == head:
        return
    if current is not None and current not in _known():
        raise UnknownRevision(_unknown_message(current))
    raise SchemaOutdated(
        f"the job database is at revision {describe(engine)}; this server needs {head}: run `sdgate db upgrade`"
    )


def _known() -> set[str]:
    return {script.revision for script in _script().walk_revisions()}


def _unknown_message(revision: str) -> str:
    return (f"the job database is at revision {revision}, which this server does not know (its newest is "
            f"{head_revision()}): a newer sdgate upgraded it; upgrade this server too")


def _lock(conn: Connection) -> None:
    """Take the database's write lock for this transaction, so the whole upgrade happens once, atomically."""
    if conn.dialect.name == "sqlite":
        # pysqlite issues no BEGIN before DDL on its own, so CREATE TABLE would commit at once; an explicit
        # BEGIN IMMEDIATE makes the DDL transactional and waits (the driver's busy timeout) for other writers.
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    elif conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})


def _upgrade_once(engine: Engine) -> None:
    with engine.begin() as conn:
        _lock(conn)
        current = _current(conn)
        if current == head_revision():
            return  # another process finished it while this one waited for the lock
        if current is not None and current not in _known():
            raise UnknownRevision(_unknown_message(current))
        config = _config(conn)
        if current is None and inspect(conn).has_table("jobs"):
            log.info("job database made by v0.1 (no schema version): recording it as revision %s", V01_REVISION)
            command.stamp(config, V01_REVISION)
        command.upgrade(config, "head")


def upgrade(engine: Engine) -> None:
    """Bring the job database to the head revision; a no-op (one query) when it is there already."""
    for attempt in range(ATTEMPTS):
        try:
            if current_revision(engine) != head_revision():
                _upgrade_once(engine)
            return
        except (DBAPIError, CommandError) as exc:
            # Processes starting together on a fresh database (an ingress and its Ray replicas, several
            # servers) race; where the database has no lock the loser fails, then finds the work done. On
            # SQLite even connecting can fail then (switching a new file to WAL needs its lock).
            if attempt == ATTEMPTS - 1:
                raise
            log.info("job database upgrade raced another process (%s); retrying", type(exc).__name__)
            time.sleep(0.2 * (attempt + 1))
