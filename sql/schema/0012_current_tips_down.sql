-- Downgrade of schema 0012 (migrations/versions/0012_current_tips.py): the views read the
-- history again, as schema 0003 wrote them, before payday.current_tips and its triggers go.

CREATE OR REPLACE VIEW payday.payday_tips AS
    SELECT t.tipper, t.tippee, t.amount, t.ctime,
           (u.username IS NULL) AS tippee_claimed,
           (SELECT o.id FROM payday.open_payday_v o) AS payday_id
      FROM (SELECT DISTINCT ON (x.tipper, x.tippee) x.tipper, x.tippee, x.amount, x.ctime
              FROM payday.tips x
             WHERE x.mtime < (SELECT o.ts_start FROM payday.open_payday_v o)
             ORDER BY x.tipper, x.tippee, x.mtime DESC, x.id DESC) t
      -- Tippees who are suspicious or not claimed before ts_start: the few.
      LEFT JOIN (SELECT q.username, q.is_suspicious
                   FROM payday.participants q
                  WHERE q.is_suspicious OR q.claimed_time IS NULL
                     OR q.claimed_time >= (SELECT o.ts_start FROM payday.open_payday_v o)) u
        ON u.username = t.tippee
     WHERE u.is_suspicious IS NOT TRUE
       -- Pairs already paid in this payday: looked up only once it has tip transfers at all.
       AND (NOT EXISTS (SELECT 1 FROM payday.transfers y JOIN payday.open_payday_v o ON o.id = y.payday_id
                         WHERE y.context = 'tip')
            OR NOT EXISTS (SELECT 1 FROM payday.transfers y JOIN payday.open_payday_v o ON o.id = y.payday_id
                            WHERE y.context = 'tip' AND y.tipper = t.tipper AND y.tippee = t.tippee));

CREATE OR REPLACE VIEW payday.due_credits AS
    SELECT p.username, p.claimed_time, p.balance,
           coalesce(o.obligations, 0)::numeric(35,2) AS obligations,
           (p.balance - coalesce(o.obligations, 0))::numeric(35,2) AS payout,
           (p.balance - coalesce(o.obligations, 0) - f.credit_fee)::numeric(35,2) AS credit_amount,
           f.credit_fee::numeric(35,2) AS fee,
           p.balanced_account_uri AS route,
           (SELECT d.id FROM payday.open_payday_v d) AS payday_id
      FROM payday.participants p
      LEFT JOIN (SELECT t.tipper, sum(t.amount) AS obligations
                   FROM (SELECT DISTINCT ON (x.tipper, x.tippee) x.tipper, x.tippee, x.amount
                           FROM payday.tips x
                          ORDER BY x.tipper, x.tippee, x.mtime DESC, x.id DESC) t
                  -- Tips to suspicious tippees do not count (the few: an anti-join).
                  WHERE NOT EXISTS (SELECT 1 FROM payday.participants e
                                     WHERE e.username = t.tippee AND e.is_suspicious)
                  GROUP BY t.tipper) o
        ON o.tipper = p.username
     CROSS JOIN payday.fees() f
     WHERE p.claimed_time < (SELECT d.ts_start FROM payday.open_payday_v d)
       AND p.is_suspicious IS FALSE
       AND p.balanced_account_uri IS NOT NULL
       AND p.balance - coalesce(o.obligations, 0) >= f.minimum_credit
       AND NOT EXISTS (SELECT 1 FROM payday.exchanges x
                        WHERE x.payday_id = (SELECT d.id FROM payday.open_payday_v d)
                          AND x.participant = p.username AND x.kind = 'credit');

COMMENT ON VIEW payday.payday_tips IS
    'Tips of the open payday before the tipper is looked at (SPEC 4.4): per (tipper, tippee) the latest tip before '
    'ts_start, tippee not suspicious, pair not yet paid a tip in this payday. tippee_claimed: the tippee claimed '
    'before ts_start. payday.due_tips keeps the rows whose tipper takes part in the payday.';

DROP TRIGGER tips_current_insert ON payday.tips;
DROP TRIGGER tips_current_update ON payday.tips;
DROP TRIGGER tips_current_delete ON payday.tips;
DROP TRIGGER tips_current_truncate ON payday.tips;
DROP FUNCTION payday.current_tips_insert();
DROP FUNCTION payday.current_tips_recompute();
DROP FUNCTION payday.current_tips_truncate();
DROP TABLE payday.current_tips;
