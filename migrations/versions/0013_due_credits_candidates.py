"""Scale, twelfth round: payday.due_credits sums the current tips of its candidates only,
and the ledger check reads the transfers twice instead of three times.

sql/schema/0013_due_credits_candidates.sql restates the view (same columns, same rows):
a participant whose balance is below the minimum credit is left out before anything is
summed, and each candidate's current tips are read through payday.current_tips' primary
key. Every function file is then reloaded: check_ledger() (payday.check(),
check_recent(), finish()) checks the balances and the paydays' counters in one statement,
whose sums per (payday, tipper) serve both.

Downgrade restates schema 0012's view (sql/schema/0013_due_credits_candidates_down.sql).
The function files stay those of head, as after every downgrade; they run on the 0012
schema.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

from alembic import op

try:
    from payday.migrations.sqlfiles import load_functions, run_schema
except ImportError:  # alembic run from a source checkout without payday installed
    from migrations.sqlfiles import load_functions, run_schema  # type: ignore[no-redef]

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_schema(op, "0013_due_credits_candidates.sql")
    load_functions(op)


def downgrade() -> None:
    run_schema(op, "0013_due_credits_candidates_down.sql")
