"""Performance at scale: HOT-friendly participants, a covering latest-tip index, set-based
reference checks on transfers, a narrow per-payday transfers index.

sql/schema/0003_performance.sql, then every function (always last). The measurements
behind each change are in bench/README.md.

Downgrade restores 0002's shape exactly: the due views as 0001 defined them and no
payday.payday_tips, the three foreign keys of payday.transfers (validated against the
rows present), the (payday_id, tipper, tippee) index, the old latest-tip index without
extended statistics, and the default fillfactor. The function files stay those of head,
as after every downgrade (payday.pay_tips() reads payday.payday_tips: it needs 0003).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

try:
    from payday.migrations.sqlfiles import execute_sql, load_functions, run_schema
except ImportError:  # alembic run from a source checkout without payday installed
    from migrations.sqlfiles import execute_sql, load_functions, run_schema  # type: ignore[no-redef]

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

DOWNGRADE = """
-- The due views as 0001 defined them (same columns), then the view they were built on.
CREATE OR REPLACE VIEW payday.due_tips AS
    SELECT t.tipper, t.tippee, t.amount, t.ctime,
           (e.claimed_time IS NOT NULL AND e.claimed_time < pd.ts_start) AS tippee_claimed,
           pd.id AS payday_id
      FROM payday.open_payday_v pd
      CROSS JOIN LATERAL (
            SELECT DISTINCT ON (x.tipper, x.tippee) x.tipper, x.tippee, x.amount, x.ctime
              FROM payday.tips x
             WHERE x.mtime < pd.ts_start
             ORDER BY x.tipper, x.tippee, x.mtime DESC, x.id DESC) t
      JOIN payday.participants r
        ON r.username = t.tipper AND r.claimed_time < pd.ts_start AND r.is_suspicious IS NOT TRUE
      JOIN payday.participants e
        ON e.username = t.tippee AND e.is_suspicious IS NOT TRUE
     WHERE NOT EXISTS (SELECT 1 FROM payday.transfers y
                        WHERE y.payday_id = pd.id AND y.context = 'tip'
                          AND y.tipper = t.tipper AND y.tippee = t.tippee);

-- SPEC 4.5: who needs a card charge now, and for how much.
CREATE OR REPLACE VIEW payday.due_charges AS
    SELECT p.username, p.claimed_time, p.balance, o.owed,
           o.owed - p.balance AS short,
           greatest(o.owed - p.balance, f.minimum_charge)::numeric(35,2) AS amount,
           payday.charge_for(greatest(o.owed - p.balance, f.minimum_charge)) AS charge_amount,
           payday.charge_for(greatest(o.owed - p.balance, f.minimum_charge))
               - greatest(o.owed - p.balance, f.minimum_charge)::numeric(35,2) AS fee,
           CASE WHEN p.balanced_account_uri IS NOT NULL THEN 'balanced' ELSE 'stripe' END AS processor,
           coalesce(p.balanced_account_uri, p.stripe_customer_id) AS route,
           p.payday_id
      FROM payday.payday_participants p
      JOIN (SELECT tipper, sum(amount) AS owed
              FROM payday.due_tips WHERE tippee_claimed GROUP BY tipper) o
        ON o.tipper = p.username
     CROSS JOIN payday.fees() f
     WHERE o.owed > p.balance
       AND p.is_suspicious IS FALSE
       AND coalesce(p.balanced_account_uri, p.stripe_customer_id) IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM payday.exchanges x
                        WHERE x.payday_id = p.payday_id AND x.participant = p.username
                          AND x.kind = 'charge');

-- SPEC 4.8: who gets paid out now, and how much.
CREATE OR REPLACE VIEW payday.due_credits AS
    SELECT p.username, p.claimed_time, p.balance,
           coalesce(o.obligations, 0)::numeric(35,2) AS obligations,
           (p.balance - coalesce(o.obligations, 0))::numeric(35,2) AS payout,
           (p.balance - coalesce(o.obligations, 0) - f.credit_fee)::numeric(35,2) AS credit_amount,
           f.credit_fee::numeric(35,2) AS fee,
           p.balanced_account_uri AS route,
           p.payday_id
      FROM payday.payday_participants p
      LEFT JOIN (SELECT t.tipper, sum(t.amount) AS obligations
                   FROM (SELECT DISTINCT ON (x.tipper, x.tippee) x.tipper, x.tippee, x.amount
                           FROM payday.tips x
                          ORDER BY x.tipper, x.tippee, x.mtime DESC, x.id DESC) t
                   JOIN payday.participants e
                     ON e.username = t.tippee AND e.is_suspicious IS NOT TRUE
                  GROUP BY t.tipper) o
        ON o.tipper = p.username
     CROSS JOIN payday.fees() f
     WHERE p.is_suspicious IS FALSE
       AND p.balanced_account_uri IS NOT NULL
       AND p.balance - coalesce(o.obligations, 0) >= f.minimum_credit
       AND NOT EXISTS (SELECT 1 FROM payday.exchanges x
                        WHERE x.payday_id = p.payday_id AND x.participant = p.username
                          AND x.kind = 'credit');
DROP VIEW payday.payday_tips;

DROP TRIGGER IF EXISTS transfers_references_insert ON payday.transfers;
DROP TRIGGER IF EXISTS transfers_references_update ON payday.transfers;
DROP TRIGGER IF EXISTS participants_rename_transfers ON payday.participants;
DROP TRIGGER IF EXISTS participants_transfers_referenced ON payday.participants;
DROP TRIGGER IF EXISTS paydays_transfers_referenced ON payday.paydays;
DROP FUNCTION IF EXISTS payday.transfers_references_exist();
DROP FUNCTION IF EXISTS payday.participants_rename_transfers();
DROP FUNCTION IF EXISTS payday.transfers_still_referenced();

ALTER TABLE payday.transfers
    ADD CONSTRAINT transfers_tipper_fkey FOREIGN KEY (tipper)
        REFERENCES payday.participants (username) ON UPDATE CASCADE,
    ADD CONSTRAINT transfers_tippee_fkey FOREIGN KEY (tippee)
        REFERENCES payday.participants (username) ON UPDATE CASCADE,
    ADD CONSTRAINT transfers_payday_id_fkey FOREIGN KEY (payday_id)
        REFERENCES payday.paydays (id);

DROP INDEX IF EXISTS payday.transfers_payday_idx;
CREATE INDEX transfers_payday_pair_idx ON payday.transfers (payday_id, tipper, tippee);

DROP STATISTICS IF EXISTS payday.tips_pair_ndistinct;
DROP INDEX payday.tips_pair_latest_idx;
CREATE INDEX tips_pair_latest_idx ON payday.tips (tipper, tippee, mtime DESC) INCLUDE (amount, ctime);

ALTER TABLE payday.participants RESET (fillfactor);
"""


def upgrade() -> None:
    run_schema(op, "0003_performance.sql")
    load_functions(op)  # always last: reload every sql/functions/**/*.sql


def downgrade() -> None:
    execute_sql(op, DOWNGRADE)
