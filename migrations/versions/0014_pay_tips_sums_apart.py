"""Scale, fourteenth round: pay_tips() works out each due tip's cents once and sums what
tippers pay and what tippees receive apart. Function bodies only.

The statement summed every paid tip a second time in one aggregate keyed by participant,
four filtered sums a row (paid out and received, each in cents and in numerics), to move
the balances. Each due tip's amount in integer cents is now worked out once, in the
statement's first step; the tippees' side is one sum a row, the tippers' side is the sums
per tipper it already had, and the two meet in a full join. The paid tips are kept as two
sets (who pays all, the short tippers' paid tips), so the short tippers' figures no longer
filter every paid tip. The same rows, balances and figures: ~1.5 s less of a 1M payday's
~31 s statement (bench/README.md).

Upgrade reloads every function file. Downgrade has nothing to take back: the function
files stay those of head, as after every downgrade, and they run on the 0013 schema.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

from alembic import op

try:
    from payday.migrations.sqlfiles import load_functions
except ImportError:  # alembic run from a source checkout without payday installed
    from migrations.sqlfiles import load_functions  # type: ignore[no-redef]

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    load_functions(op)


def downgrade() -> None:
    pass
