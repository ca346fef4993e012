"""Scale, eleventh round: the current tip of every pair in a table of its own
(payday.current_tips), kept by triggers on payday.tips, so that a payday's three passes
over the tips read one row per pair instead of picking the latest of each pair's history.

sql/schema/0012_current_tips.sql adds the table, its triggers and the views' new
definitions (same columns); every function file is then reloaded, and the table is filled
from the history (payday.rebuild_current_tips()), after the triggers exist.

Downgrade restates the views of schema 0003 (sql/schema/0012_current_tips_down.sql), then
drops the triggers and the table. The function files stay those of head, as after every
downgrade: rebuild_current_tips() then refuses to run (55000), and check() skips the
comparison of current tips with the history.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

from alembic import op

try:
    from payday.migrations.sqlfiles import execute_sql, load_functions, run_schema
except ImportError:  # alembic run from a source checkout without payday installed
    from migrations.sqlfiles import execute_sql, load_functions, run_schema  # type: ignore[no-redef]

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

# After the function files: the function must exist.
FILL = """
REVOKE ALL ON FUNCTION payday.rebuild_current_tips() FROM PUBLIC;
SELECT payday.rebuild_current_tips();
ANALYZE payday.current_tips;
"""


def upgrade() -> None:
    run_schema(op, "0012_current_tips.sql")
    load_functions(op)
    execute_sql(op, FILL)


def downgrade() -> None:
    run_schema(op, "0012_current_tips_down.sql")
