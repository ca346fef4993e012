"""Scale, tenth round: record_outcomes() stays a probe per outcome whatever the statistics
of payday.exchanges say. Function bodies only.

Statistics that count fewer exchanges than a batch names (the table seen empty while it
holds the payday's intents: a batch of intents rolled back and vacuumed away, or not yet
analyzed) made every call read the whole primary key: ~600 ms a call of 1,000 outcomes at
1M. record_outcomes() now refreshes such statistics first (ANALYZE), locks the batch's
exchanges and finds unknown ids by one primary-key probe per id, and looks for an unknown
id only when fewer rows were locked than named.

Upgrade reloads every function file. Downgrade has nothing to take back: the function
files stay those of head, as after every downgrade, and they run on the 0010 schema.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

from alembic import op

try:
    from payday.migrations.sqlfiles import load_functions
except ImportError:  # alembic run from a source checkout without payday installed
    from migrations.sqlfiles import load_functions  # type: ignore[no-redef]

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    load_functions(op)


def downgrade() -> None:
    pass
