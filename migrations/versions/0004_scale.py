"""Scale, second round: set-based payout intents, a BRIN index on transfers.payday_id, no
reference check on the transfers pay_tips() inserts (it updates every row they reference).

sql/schema/0004_scale.sql, then every function, then the privileges on the functions
this revision adds (a GRANT needs the function to exist).

Downgrade takes back what this revision granted, restores the B-tree on payday_id
and the unconditional reference-check trigger. The function files stay those of head, as
after every downgrade (at 0003 nobody but the owner may call payday.credit_intents).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

try:
    from payday.migrations.sqlfiles import execute_sql, load_functions, run_schema
except ImportError:  # alembic run from a source checkout without payday installed
    from migrations.sqlfiles import execute_sql, load_functions, run_schema  # type: ignore[no-redef]

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

GRANTS = """
REVOKE ALL ON FUNCTION payday.credit_intents(text[], text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payday.credit_intents(text[], text) TO payday_runner;
"""

DOWNGRADE = """
REVOKE ALL ON FUNCTION payday.credit_intents(text[], text) FROM payday_runner;
DROP INDEX IF EXISTS payday.transfers_payday_idx;
CREATE INDEX transfers_payday_idx ON payday.transfers (payday_id);
DROP TRIGGER transfers_references_insert ON payday.transfers;
CREATE TRIGGER transfers_references_insert
    AFTER INSERT ON payday.transfers
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION payday.transfers_references_exist();
"""


def upgrade() -> None:
    run_schema(op, "0004_scale.sql")
    load_functions(op)
    execute_sql(op, GRANTS)


def downgrade() -> None:
    execute_sql(op, DOWNGRADE)
