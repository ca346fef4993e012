"""Scale, seventeenth round: a payday's tip transfers get their tipper, tippee and payday_id
indexes after pay_tips(), off its path.

sql/schema/0015_tip_transfer_indexes.sql drops those three partitioned indexes (and with
them every partition's) and sql/schema/0015_tip_transfer_indexes_each.sql builds them again
on every partition, under the same names, as each partition's own. Every function file is then reloaded: attach_tip_transfers() builds only the
primary key before the attach, payday.index_tip_transfers() builds the other three, and
finish() calls it before its checks. The runner calls it on a connection of its own while
the payout runs, so the builds use the second core instead of holding up pay_tips().

Downgrade builds any index a partition lacks (the same _each.sql) and makes them the
partitioned table's again (sql/schema/0015_tip_transfer_indexes_down.sql). The function files stay those of head, as
after every downgrade: on the 0014 schema attach_tip_transfers() builds all four again and
index_tip_transfers() finds nothing to do.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

from alembic import op

try:
    from payday.migrations.sqlfiles import execute_sql, load_functions, run_schema
except ImportError:  # alembic run from a source checkout without payday installed
    from migrations.sqlfiles import execute_sql, load_functions, run_schema  # type: ignore[no-redef]

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

# After the function files: a GRANT needs the function to exist.
GRANTS = """
REVOKE ALL ON FUNCTION payday.index_tip_transfers(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payday.index_tip_transfers(bigint) TO payday_runner;
"""


def upgrade() -> None:
    run_schema(op, "0015_tip_transfer_indexes.sql")
    run_schema(op, "0015_tip_transfer_indexes_each.sql")
    load_functions(op)
    execute_sql(op, GRANTS)


def downgrade() -> None:
    run_schema(op, "0015_tip_transfer_indexes_each.sql")
    run_schema(op, "0015_tip_transfer_indexes_down.sql")
