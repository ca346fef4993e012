-- Schema 0015: the suspicious participants indexed on their own, and payday.due_credits
-- leaves out the tips to them with one hash table a statement instead of a primary-key
-- probe a tip (bench/README.md, fifteenth round).
--
-- payday.credit_intents() looks each name of a batch up in payday.due_credits, whose
-- obligations leave out the current tips to suspicious tippees. Schema 0013 checked each
-- of a candidate's tippees in the primary key of payday.participants (a probe and a heap
-- fetch a tip, ~14 a candidate): at 1M participants about 45 ms a batch of 1,000 names,
-- 4.5-5 s a payout.
--
-- 1. payday.participants_suspicious_idx: the usernames of the suspicious participants
--    (~1% of them). A payday's updates (balance, pending) change neither column: the index
--    costs an entry per suspicious participant written, nothing per payday.
-- 2. payday.due_credits tests `t.tippee NOT IN (the suspicious usernames)`: PostgreSQL
--    hashes the subquery's result once per statement (an index-only scan of the index
--    above, ~1 ms at 1M) and probes the hash table a tip. NOT IN, not NOT EXISTS: the
--    planner never makes a join of NOT IN, so it cannot choose, as it did for NOT EXISTS
--    once the index existed, a merge anti-join that reads the whole index for every
--    candidate (credits_due() 1.2 s -> 46 s at 1M). Neither side can be NULL (a
--    username, a tippee), so NOT IN means NOT EXISTS here. The hash table must fit in
--    work_mem times hash_mem_multiplier (~170,000 suspicious participants at the default
--    4MB); the functions that read the view for a payday set work_mem = 256MB.
-- Same columns, same rows.

CREATE INDEX participants_suspicious_idx ON payday.participants (username) WHERE is_suspicious;
COMMENT ON INDEX payday.participants_suspicious_idx IS
    'The suspicious participants (schema 0015): hashed once per statement by payday.due_credits to leave out the '
    'tips to them.';

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
               -- Tips to suspicious tippees do not count (the few: hashed once).
               AND t.tippee NOT IN (SELECT e.username FROM payday.participants e WHERE e.is_suspicious)) o
     WHERE p.claimed_time < (SELECT d.ts_start FROM payday.open_payday_v d)
       AND p.is_suspicious IS FALSE
       AND p.balanced_account_uri IS NOT NULL
       -- Obligations are never negative: no payout below this, nothing to sum.
       AND p.balance >= f.minimum_credit
       AND p.balance - coalesce(o.obligations, 0) >= f.minimum_credit
       AND NOT EXISTS (SELECT 1 FROM payday.exchanges x
                        WHERE x.payday_id = (SELECT d.id FROM payday.open_payday_v d)
                          AND x.participant = p.username AND x.kind = 'credit');
