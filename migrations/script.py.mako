"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}
"""

from __future__ import annotations

from alembic import op

try:
    from payday.migrations.sqlfiles import load_functions, run_schema
except ImportError:  # alembic run from a source checkout without payday installed
    from migrations.sqlfiles import load_functions, run_schema  # type: ignore[no-redef]

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = ${repr(branch_labels)}
depends_on = ${repr(depends_on)}


def upgrade() -> None:
    run_schema(op, "NNNN_name.sql")  # sql/schema/ file of this revision
    load_functions(op)  # always last: reload every sql/functions/**/*.sql


def downgrade() -> None:
    ${downgrades if downgrades else "raise NotImplementedError"}
