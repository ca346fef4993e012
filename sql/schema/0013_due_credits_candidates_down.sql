-- Downgrade of schema 0013 (migrations/versions/0013_due_credits_candidates.py): payday.due_credits
-- as schema 0012 wrote it (the current tips of every tipper summed, then joined).

CREATE OR REPLACE VIEW payday.due_credits AS
    SELECT p.username, p.claimed_time, p.balance,
           coalesce(o.obligations, 0)::numeric(35,2) AS obligations,
           (p.balance - coalesce(o.obligations, 0))::numeric(35,2) AS payout,
           (p.balance - coalesce(o.obligations, 0) - f.credit_fee)::numeric(35,2) AS credit_amount,
           f.credit_fee::numeric(35,2) AS fee,
           p.balanced_account_uri AS route,
           (SELECT d.id FROM payday.open_payday_v d) AS payday_id
      FROM payday.participants p
      LEFT JOIN (SELECT t.tipper,
                        -- In integer cents (bigint) but for amounts of 10^13 and more: the cheaper sum.
                        coalesce(sum((t.amount * 100)::bigint) FILTER (WHERE t.amount < 1e13), 0) * 0.01
                        + coalesce(sum(t.amount) FILTER (WHERE t.amount >= 1e13), 0) AS obligations
                   FROM payday.current_tips t
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
