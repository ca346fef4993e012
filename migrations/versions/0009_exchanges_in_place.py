"""Scale, seventh round: an exchange's outcome is written in place (a HOT update).

sql/schema/0009_exchanges_in_place.sql drops exchanges_pre_idx (keyed on status, which an
outcome changes, so every outcome added an entry to each index) and the unique index on
idempotency_key (the key names the id: the primary key makes it unique), and leaves half of
each new page of payday.exchanges free for the outcome's row version. pending_exchanges()
now looks the pre exchanges up among the open payday's own (the only payday that can have
any), then every function file is reloaded (always last).

Downgrade restores 0008's shape: both indexes (the unique one built against the rows
present) and the default fillfactor. The function files stay those of head, as after every
downgrade; they run on the 0008 schema.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from alembic import op

try:
    from payday.migrations.sqlfiles import execute_sql, load_functions, run_schema
except ImportError:  # alembic run from a source checkout without payday installed
    from migrations.sqlfiles import execute_sql, load_functions, run_schema  # type: ignore[no-redef]

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

DOWNGRADE = """
CREATE INDEX exchanges_pre_idx ON payday.exchanges (payday_id) WHERE status = 'pre';
CREATE UNIQUE INDEX exchanges_idempotency_key_idx ON payday.exchanges (idempotency_key);
ALTER TABLE payday.exchanges RESET (fillfactor);
COMMENT ON COLUMN payday.exchanges.idempotency_key IS NULL;
"""


def upgrade() -> None:
    run_schema(op, "0009_exchanges_in_place.sql")
    load_functions(op)


def downgrade() -> None:
    execute_sql(op, DOWNGRADE)
