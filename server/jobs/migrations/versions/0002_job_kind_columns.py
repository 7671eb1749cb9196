"""jobs: schema_version, task and route (rows from v0.1 are version 1 img2img jobs on the v6 route).

Revision ID: 0002
Revises: 0001
Create Date: 2026-05-20

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN on SQLite too (batch mode copies the table only for changes SQLite cannot ALTER).
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("schema_version", sa.Integer, nullable=False, server_default="1"))
        batch.add_column(sa.Column("task", sa.String(32), nullable=False, server_default="img2img"))
        batch.add_column(sa.Column("route", sa.String(200), nullable=False, server_default="/api/v6/images/img2img"))


def downgrade() -> None:
    # Dropping columns makes SQLite copy the table; keep its AUTOINCREMENT (ids never reused) in the copy.
    with op.batch_alter_table("jobs", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_column("route")
        batch.drop_column("task")
        batch.drop_column("schema_version")
