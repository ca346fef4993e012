"""Scale, sixth round: pay_tips() sorts only the short tippers' tips. Function bodies only.

A tipper whose balance covers everything they owe pays every tip, whatever the order:
pay_tips() sums the due tips per tipper and sorts, with a running total, only the tips of
the tippers left short after the charges, instead of every due tip of the payday. Ids of
a payday's tip transfers stay dense (2^40 * payday id + 1, + 2, ...); their order is no
longer that of a single sort (it never was a contract).

Upgrade reloads every function file. Downgrade has nothing to take back: the function
files stay those of head, as after every downgrade, and they run on the 0007 schema.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from alembic import op

try:
    from payday.migrations.sqlfiles import load_functions
except ImportError:  # alembic run from a source checkout without payday installed
    from migrations.sqlfiles import load_functions  # type: ignore[no-redef]

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    load_functions(op)


def downgrade() -> None:
    pass
