-- Schema 0012: the current tip of every pair kept in a table of its own, so that a payday
-- reads one row per pair instead of picking the latest of each pair's history three times
-- (bench/README.md, eleventh round).
--
-- A payday needed the latest tip of each (tipper, tippee) before ts_start in three passes:
-- the charges (payday.due_charges), the tips (payday.pay_tips()) and the payout's
-- obligations (payday.due_credits, which takes the latest tip whatever its time). Each pass
-- read the whole history in index order and kept the first row of each pair: at 1M
-- participants, 10M tips for 7.1M pairs, about 3.6 s a pass before anything else was done.
--
-- 1. payday.current_tips: per pair, its latest tip (latest mtime, then highest id), the
--    stopped ones (amount 0) included: the tip id, amount, ctime and mtime of that row.
-- 2. Statement triggers on payday.tips keep it: an INSERT upserts the latest new row of
--    each pair when it is later than the pair's current one (concurrent inserts to one pair
--    meet on its primary-key entry, and the later tip wins whichever commits first); an
--    UPDATE or DELETE (the schema owner's: the web application may only insert, migration
--    0002) recomputes the pairs it touched from payday.tips, which is also how a rename
--    (ON UPDATE CASCADE) moves a pair; a TRUNCATE empties it.
--    payday.rebuild_current_tips() recomputes it all.
-- 3. The views read it. payday.payday_tips takes a pair's current tip when its mtime is
--    before ts_start, and for the few pairs whose current tip is newer (changed while the
--    payday runs) the latest tip before ts_start from payday.tips, an index probe each, in
--    the same scan (a second branch of a UNION ALL made a nested loop of it, and the
--    planner's guess of how many rows are older than ts_start, a third, made it read the
--    table through an index on mtime).
--    payday.due_credits sums the current tips. Their columns do not change, nor do those of
--    the views built on them (due_tips, due_charges), nor any function.
-- 4. due_credits adds the obligations as integer cents (bigint), amounts of 10^13 and more
--    excepted: that sum costs less a row than numeric's.
-- 5. payday.check() (the full audit, not check_recent()) reports a pair whose row differs
--    from its history: 'current tip differs from tips'.
-- The table is filled by the migration, after the triggers exist (payday.rebuild_current_tips()).

CREATE TABLE payday.current_tips (
    tipper  text NOT NULL,
    tippee  text NOT NULL,
    tip_id  bigint NOT NULL,
    amount  numeric(35,2) NOT NULL,
    ctime   timestamptz NOT NULL,
    mtime   timestamptz NOT NULL,
    PRIMARY KEY (tipper, tippee)
);
COMMENT ON TABLE payday.current_tips IS
    'The current tip of every (tipper, tippee) pair of payday.tips: its row with the latest mtime (then the highest '
    'id), stopped tips (amount 0) included. Kept by statement triggers on payday.tips (schema 0012); '
    'payday.rebuild_current_tips() recomputes it. Read by payday.payday_tips and payday.due_credits.';
GRANT SELECT ON payday.current_tips TO payday_app, payday_runner, payday_readonly;

CREATE FUNCTION payday.current_tips_insert() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, payday, pg_temp
    AS $$
BEGIN
    INSERT INTO payday.current_tips AS c (tipper, tippee, tip_id, amount, ctime, mtime)
    SELECT DISTINCT ON (n.tipper, n.tippee) n.tipper, n.tippee, n.id, n.amount, n.ctime, n.mtime
      FROM new_tips n
     ORDER BY n.tipper, n.tippee, n.mtime DESC, n.id DESC
        ON CONFLICT (tipper, tippee) DO UPDATE
       SET tip_id = excluded.tip_id, amount = excluded.amount, ctime = excluded.ctime, mtime = excluded.mtime
     WHERE (excluded.mtime, excluded.tip_id) > (c.mtime, c.tip_id);
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION payday.current_tips_insert() IS
    'Statement trigger of payday.tips (AFTER INSERT, new rows as new_tips): makes the latest new row of each pair its '
    'current tip in payday.current_tips when it is later (mtime, then id) than the one there. Returns NULL. '
    'Raises nothing of its own.';
CREATE TRIGGER tips_current_insert
    AFTER INSERT ON payday.tips
    REFERENCING NEW TABLE AS new_tips
    FOR EACH STATEMENT EXECUTE FUNCTION payday.current_tips_insert();

CREATE FUNCTION payday.current_tips_recompute() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, payday, pg_temp
    AS $$
DECLARE
    pairs text[][];
BEGIN
    IF TG_OP = 'UPDATE' THEN
        SELECT array_agg(ARRAY[p.tipper, p.tippee])
          INTO pairs
          FROM (SELECT o.tipper, o.tippee FROM old_tips o UNION SELECT n.tipper, n.tippee FROM new_tips n) p;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT array_agg(ARRAY[p.tipper, p.tippee])
          INTO pairs
          FROM (SELECT DISTINCT o.tipper, o.tippee FROM old_tips o) p;
    ELSE
        RAISE EXCEPTION 'current_tips_recompute: fired by %, it serves UPDATE and DELETE of payday.tips', TG_OP
            USING ERRCODE = '39P01';
    END IF;
    IF pairs IS NULL THEN
        RETURN NULL;
    END IF;
    DELETE FROM payday.current_tips c
     USING generate_subscripts(pairs, 1) i
     WHERE c.tipper = pairs[i][1] AND c.tippee = pairs[i][2];
    INSERT INTO payday.current_tips (tipper, tippee, tip_id, amount, ctime, mtime)
    SELECT l.tipper, l.tippee, l.id, l.amount, l.ctime, l.mtime
      FROM generate_subscripts(pairs, 1) i
     CROSS JOIN LATERAL (SELECT x.tipper, x.tippee, x.id, x.amount, x.ctime, x.mtime
                           FROM payday.tips x
                          WHERE x.tipper = pairs[i][1] AND x.tippee = pairs[i][2]
                          ORDER BY x.mtime DESC, x.id DESC
                          LIMIT 1) l;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION payday.current_tips_recompute() IS
    'Statement trigger of payday.tips (AFTER UPDATE with old_tips and new_tips, AFTER DELETE with old_tips): '
    'recomputes from payday.tips the current tip (payday.current_tips) of every pair the statement touched, old '
    'names and new (a rename cascades here). Returns NULL. Raises 39P01 when fired by another event.';
CREATE TRIGGER tips_current_update
    AFTER UPDATE ON payday.tips
    REFERENCING OLD TABLE AS old_tips NEW TABLE AS new_tips
    FOR EACH STATEMENT EXECUTE FUNCTION payday.current_tips_recompute();
CREATE TRIGGER tips_current_delete
    AFTER DELETE ON payday.tips
    REFERENCING OLD TABLE AS old_tips
    FOR EACH STATEMENT EXECUTE FUNCTION payday.current_tips_recompute();

CREATE FUNCTION payday.current_tips_truncate() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, payday, pg_temp
    AS $$
BEGIN
    TRUNCATE payday.current_tips;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION payday.current_tips_truncate() IS
    'Statement trigger of payday.tips (AFTER TRUNCATE): empties payday.current_tips. Returns NULL. Raises nothing '
    'of its own.';
CREATE TRIGGER tips_current_truncate
    AFTER TRUNCATE ON payday.tips
    FOR EACH STATEMENT EXECUTE FUNCTION payday.current_tips_truncate();

-- Same columns as schema 0003's views: only where the tips come from changes.
CREATE OR REPLACE VIEW payday.payday_tips AS
    SELECT t.tipper, t.tippee, t.amount, t.ctime,
           (u.username IS NULL) AS tippee_claimed,
           (SELECT o.id FROM payday.open_payday_v o) AS payday_id
      FROM (-- A pair's current tip when it is older than the payday (nearly all); for a pair
            -- changed since the payday started, its latest tip before, looked up in the
            -- history (the subqueries run for those pairs only); none for a pair that had none.
            SELECT c.tipper, c.tippee,
                   CASE WHEN c.mtime < (SELECT o.ts_start FROM payday.open_payday_v o) THEN c.amount
                        ELSE (SELECT x.amount FROM payday.tips x
                               WHERE x.tipper = c.tipper AND x.tippee = c.tippee
                                 AND x.mtime < (SELECT o.ts_start FROM payday.open_payday_v o)
                               ORDER BY x.mtime DESC, x.id DESC LIMIT 1) END AS amount,
                   CASE WHEN c.mtime < (SELECT o.ts_start FROM payday.open_payday_v o) THEN c.ctime
                        ELSE (SELECT x.ctime FROM payday.tips x
                               WHERE x.tipper = c.tipper AND x.tippee = c.tippee
                                 AND x.mtime < (SELECT o.ts_start FROM payday.open_payday_v o)
                               ORDER BY x.mtime DESC, x.id DESC LIMIT 1) END AS ctime
              FROM payday.current_tips c
             WHERE (SELECT o.ts_start FROM payday.open_payday_v o) IS NOT NULL) t
      -- Tippees who are suspicious or not claimed before ts_start: the few.
      LEFT JOIN (SELECT q.username, q.is_suspicious
                   FROM payday.participants q
                  WHERE q.is_suspicious OR q.claimed_time IS NULL
                     OR q.claimed_time >= (SELECT o.ts_start FROM payday.open_payday_v o)) u
        ON u.username = t.tippee
     WHERE t.amount IS NOT NULL AND u.is_suspicious IS NOT TRUE
       -- Pairs already paid in this payday: looked up only once it has tip transfers at all.
       AND (NOT EXISTS (SELECT 1 FROM payday.transfers y JOIN payday.open_payday_v o ON o.id = y.payday_id
                         WHERE y.context = 'tip')
            OR NOT EXISTS (SELECT 1 FROM payday.transfers y JOIN payday.open_payday_v o ON o.id = y.payday_id
                            WHERE y.context = 'tip' AND y.tipper = t.tipper AND y.tippee = t.tippee));
COMMENT ON VIEW payday.payday_tips IS
    'Tips of the open payday before the tipper is looked at (SPEC 4.4): per (tipper, tippee) the latest tip before '
    'ts_start (payday.current_tips, or payday.tips for a pair changed since), tippee not suspicious, pair not yet paid '
    'a tip in this payday. tippee_claimed: the tippee claimed before ts_start. payday.due_tips keeps the rows whose '
    'tipper takes part in the payday.';

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
