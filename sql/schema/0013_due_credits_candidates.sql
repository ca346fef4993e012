-- Schema 0013: payday.due_credits sums the current tips of its candidates only
-- (bench/README.md, twelfth round).
--
-- Schema 0012's view summed the current tips of every tipper (a hash aggregate of the
-- whole of payday.current_tips), then kept the participants due a payout: at 10k
-- participants about 2,000 of 10,000 are candidates at all (claimed, not suspicious, a
-- bank account, a balance of at least the minimum credit). Obligations are never negative
-- (tips_amount_check): a balance below the minimum credit cannot leave a payout, so such a
-- participant is left out before anything is summed, and each candidate's current tips are
-- then read through the primary key of payday.current_tips (tipper first). Same columns,
-- same rows; payday.credit_intents(), which looks each name up in the view, reads the same
-- way as before.

CREATE OR REPLACE VIEW payday.due_credits AS
    SELECT p.username, p.claimed_time, p.balance,
           coalesce(o.obligations, 0)::numeric(35,2) AS obligations,
           (p.balance - coalesce(o.obligations, 0))::numeric(35,2) AS payout,
           (p.balance - coalesce(o.obligations, 0) - f.credit_fee)::numeric(35,2) AS credit_amount,
           f.credit_fee::numeric(35,2) AS fee,
           p.balanced_account_uri AS route,
           (SELECT d.id FROM payday.open_payday_v d) AS payday_id
      FROM payday.participants p
     CROSS JOIN payday.fees() f
     CROSS JOIN LATERAL (
            SELECT -- In integer cents (bigint) but for amounts of 10^13 and more: the cheaper sum.
                   coalesce(sum((t.amount * 100)::bigint) FILTER (WHERE t.amount < 1e13), 0) * 0.01
                   + coalesce(sum(t.amount) FILTER (WHERE t.amount >= 1e13), 0) AS obligations
              FROM payday.current_tips t
             WHERE t.tipper = p.username
               -- Tips to suspicious tippees do not count (the few: an anti-join).
               AND NOT EXISTS (SELECT 1 FROM payday.participants e
                                WHERE e.username = t.tippee AND e.is_suspicious)) o
     WHERE p.claimed_time < (SELECT d.ts_start FROM payday.open_payday_v d)
       AND p.is_suspicious IS FALSE
       AND p.balanced_account_uri IS NOT NULL
       -- Obligations are never negative: no payout below this, nothing to sum.
       AND p.balance >= f.minimum_credit
       AND p.balance - coalesce(o.obligations, 0) >= f.minimum_credit
       AND NOT EXISTS (SELECT 1 FROM payday.exchanges x
                        WHERE x.payday_id = (SELECT d.id FROM payday.open_payday_v d)
                          AND x.participant = p.username AND x.kind = 'credit');
