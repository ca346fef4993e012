"""Scale, eighth round: the checks of a payday start from a mark of every balance taken at
the previous payday's close, instead of re-adding the whole history.

sql/schema/0010_ledger_marks.sql adds payday.ledger_marks (one row per mark),
payday.ledger_mark (the latest mark's balances) and a trigger that renames a participant's
row of the mark. Every function file is then reloaded: finish() checks with
payday.check_recent() and marks the ledger (payday.mark_ledger()); the runner's check
before a payday is payday.check_recent(); payday.check() stays the full audit.

Downgrade drops the trigger and both tables. The function files stay
those of head, as after every downgrade: with no ledger_marks table, check_recent() is
check() again and finish() marks nothing.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

from alembic import op

try:
    from payday.migrations.sqlfiles import execute_sql, load_functions, run_schema
except ImportError:  # alembic run from a source checkout without payday installed
    from migrations.sqlfiles import execute_sql, load_functions, run_schema  # type: ignore[no-redef]

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# After the function files: a GRANT needs the function to exist.
GRANTS = """
GRANT EXECUTE ON FUNCTION payday.check_recent() TO payday_app, payday_runner, payday_readonly;
REVOKE ALL ON FUNCTION payday.check_ledger(boolean), payday.mark_ledger(bigint) FROM PUBLIC;
"""

DOWNGRADE = """
DROP TRIGGER participants_rename_mark ON payday.participants;
DROP FUNCTION payday.participants_rename_mark();
DROP TABLE IF EXISTS payday.ledger_mark_next;
DROP TABLE payday.ledger_mark;
DROP TABLE payday.ledger_marks;
"""


def upgrade() -> None:
    run_schema(op, "0010_ledger_marks.sql")
    load_functions(op)
    execute_sql(op, GRANTS)


def downgrade() -> None:
    execute_sql(op, DOWNGRADE)
