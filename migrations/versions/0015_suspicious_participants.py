"""Scale, fifteenth round: the suspicious participants indexed on their own, and
payday.due_credits leaves out the tips to them through one hash table a statement.

sql/schema/0015_suspicious_participants.sql adds payday.participants_suspicious_idx (the
usernames of the suspicious participants) and restates the view (same columns, same rows):
a candidate's current tips to suspicious tippees are left out by `NOT IN` that subquery,
hashed once per statement, instead of a primary-key probe of payday.participants a tip.
payday.credit_intents() looks each name of its batch up in the view: about 45 ms against
21 ms a batch of 1,000 names at 1M (bench/README.md). Every function file is then reloaded:
credit_intents() and credit_intent() set work_mem for that hash table.

Downgrade restates schema 0013's view (sql/schema/0013_due_credits_candidates.sql) and
drops the index (sql/schema/0015_suspicious_participants_down.sql). The function files stay
those of head, as after every downgrade; they run on the 0014 schema.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

from alembic import op

try:
    from payday.migrations.sqlfiles import load_functions, run_schema
except ImportError:  # alembic run from a source checkout without payday installed
    from migrations.sqlfiles import load_functions, run_schema  # type: ignore[no-redef]

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_schema(op, "0015_suspicious_participants.sql")
    load_functions(op)


def downgrade() -> None:
    run_schema(op, "0013_due_credits_candidates.sql")
    run_schema(op, "0015_suspicious_participants_down.sql")
