"""Scale, third round, and a race: function bodies only (no table, index or privilege changes).

``payday.check()`` finds the open payday's tips involving someone suspicious through the
tipper and tippee indexes instead of reading the whole payday's transfers, and counts
ntippers from transfers grouped by (payday, tipper) instead of a count(DISTINCT) that
sorted them (bench/README.md has the figures). It also reports transfers and exchanges
naming someone who is no participant.

``payday.pay_tips()`` refuses (40001, nothing paid) when a participant it pays or credits
is renamed or removed by a transaction that commits while it runs: since 0004 it skips the
reference check of its transfers, and its UPDATE skips such a row, which left transfers
naming nobody and the renamed tipper's balance untouched (docs/roles.md).

Upgrade reloads every function file. Downgrade has nothing to take back: the function
files stay those of head, as after every downgrade, and they run on the 0004 schema.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

try:
    from payday.migrations.sqlfiles import load_functions
except ImportError:  # alembic run from a source checkout without payday installed
    from migrations.sqlfiles import load_functions  # type: ignore[no-redef]

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    load_functions(op)


def downgrade() -> None:
    pass
