"""Scale, seventeenth round: payday.exchanges checks its references once per statement.

sql/schema/0016_exchanges_references.sql replaces the foreign keys participant ->
participants and payday_id -> paydays with triggers that keep their behaviour (23503 under
the same constraint names, FOR KEY SHARE locks, the rename's cascade, deletes refused), as
0003 did for payday.transfers: charge_intents() and each credit_intents() batch look their
participants and payday up in one join instead of two queries an exchange. Every function
file is then reloaded (nothing in them changes).

Downgrade drops the triggers and adds the foreign keys back, validated against every row
(sql/schema/0016_exchanges_references_down.sql).

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

from alembic import op

try:
    from payday.migrations.sqlfiles import load_functions, run_schema
except ImportError:  # alembic run from a source checkout without payday installed
    from migrations.sqlfiles import load_functions, run_schema  # type: ignore[no-redef]

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_schema(op, "0016_exchanges_references.sql")
    load_functions(op)


def downgrade() -> None:
    run_schema(op, "0016_exchanges_references_down.sql")
