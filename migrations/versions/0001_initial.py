"""Initial schema: sql/schema/0001_initial.sql and every function.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from alembic import op

try:
    from payday.migrations.sqlfiles import execute_sql, load_functions, run_schema
except ImportError:  # alembic run from a source checkout without payday installed
    from migrations.sqlfiles import execute_sql, load_functions, run_schema  # type: ignore[no-redef]

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_schema(op, "0001_initial.sql")
    load_functions(op)


def downgrade() -> None:
    execute_sql(op, "DROP SCHEMA IF EXISTS payday_sandbox CASCADE; DROP SCHEMA IF EXISTS payday CASCADE;")
