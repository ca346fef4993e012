-- Schema 0003: what a payday over a million participants needs (bench/README.md has the
-- measurements behind each item).
--
-- 1. participants leave room on every page so the payday's whole-table updates (pending
--    set by start(), moved by pay_tips(), cleared by clear_pending()) are HOT updates:
--    no index entry per updated row. Existing pages keep their old packing until
--    VACUUM FULL payday.participants (or pg_repack) rewrites them.
-- 2. The latest-tip index carries the whole DISTINCT ON order of the due views
--    (tipper, tippee, mtime DESC, id DESC): the latest tip of every pair comes out of an
--    index-only scan with no sort. Extended statistics tell the planner how many pairs
--    there are.
-- 3. transfers, the table a payday inserts millions of rows into, checks its references
--    once per statement (transition tables) instead of once per row (a foreign key's
--    RI trigger runs a query per inserted row and per key: three per transfer). The
--    behaviour of the three foreign keys it replaces is kept: an unknown tipper, tippee or
--    payday is refused with SQLSTATE 23503 and the old constraint name; a participant's
--    rename cascades into transfers; deleting a participant or a payday that transfers
--    still reference is refused (23503). Referenced rows are locked FOR KEY SHARE, as a
--    foreign key does, so a concurrent delete cannot slip in between.
-- 4. The per-payday lookup of transfers needs payday_id only (the due view anti-joins
--    with the open payday's tip transfers): a narrow index on it, appended to at its
--    right edge, replaces (payday_id, tipper, tippee).
-- 5. The due views, same columns, cheaper plans:
--    * payday.payday_tips (new): the open payday's tips before any tipper filter, so
--      per-tipper figures are aggregated before they are joined with the tipper;
--    * tippees are checked against the small set of those who are NOT eligible
--      (suspicious, unclaimed, claimed after ts_start): a hash of a few percent of the
--      participants instead of all of them;
--    * "pair not paid yet in this payday" is only looked up once the payday has tip
--      transfers at all (never during payin, when every caller runs).

-- 1 -------------------------------------------------------------------------------------
ALTER TABLE payday.participants SET (fillfactor = 50);

-- 2 -------------------------------------------------------------------------------------
DROP INDEX payday.tips_pair_latest_idx;
CREATE INDEX tips_pair_latest_idx ON payday.tips (tipper, tippee, mtime DESC, id DESC) INCLUDE (amount, ctime);
-- How many (tipper, tippee) pairs there are: the size of every due view. Without it the
-- planner guesses a tenth of the truth at a million participants and picks index probes.
CREATE STATISTICS IF NOT EXISTS payday.tips_pair_ndistinct (ndistinct) ON tipper, tippee FROM payday.tips;
ALTER STATISTICS payday.tips_pair_ndistinct SET STATISTICS 1000;

-- 3 -------------------------------------------------------------------------------------
ALTER TABLE payday.transfers
    DROP CONSTRAINT transfers_tipper_fkey,
    DROP CONSTRAINT transfers_tippee_fkey,
    DROP CONSTRAINT transfers_payday_id_fkey;

CREATE FUNCTION payday.transfers_references_exist() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, payday, pg_temp
    AS $$
DECLARE
    missing record;
    mcol text;
    muser text;
    nnames bigint;
    nfound bigint;
    nlocked bigint;
    nforeign bigint;
BEGIN
    -- Participants: every tipper and tippee of the statement's rows must exist, and is
    -- locked as a foreign key locks it (FOR KEY SHARE: renames and deletes wait, balance
    -- updates do not) -- unless this transaction wrote that row version itself (xmin):
    -- then nobody else can rename or delete it before we commit anyway. payday.pay_tips()
    -- moves money for every tipper and tippee in the statement that inserts the
    -- transfers, so it takes no extra lock here.
    WITH names AS (
        SELECT n.tipper AS username FROM new_rows n
        UNION
        SELECT n.tippee FROM new_rows n
    ), found AS MATERIALIZED (
        SELECT p.username, p.xmin = pg_current_xact_id()::xid AS mine
          FROM payday.participants p JOIN names USING (username)
    ), locked AS (
        SELECT p.username FROM payday.participants p JOIN found f USING (username)
         WHERE NOT f.mine
           FOR KEY SHARE OF p
    )
    SELECT (SELECT count(*) FROM names), (SELECT count(*) FROM found), (SELECT count(*) FROM locked),
           (SELECT count(*) FROM found WHERE NOT mine)
      INTO nnames, nfound, nlocked, nforeign;
    IF nfound <> nnames OR nlocked <> nforeign THEN
        SELECT c.col, c.username INTO mcol, muser
          FROM new_rows n
         CROSS JOIN LATERAL (VALUES ('tipper', n.tipper), ('tippee', n.tippee)) AS c(col, username)
         WHERE NOT EXISTS (SELECT 1 FROM payday.participants p WHERE p.username = c.username)
         LIMIT 1;
        IF mcol IS NULL THEN  -- it existed, then a concurrent transaction removed or renamed it
            mcol := 'tipper';
            muser := '?';
        END IF;
        RAISE EXCEPTION 'insert or update on table "transfers" violates foreign key constraint "transfers_%_fkey"', mcol
            USING ERRCODE = '23503', CONSTRAINT = format('transfers_%s_fkey', mcol),
                  SCHEMA = 'payday', TABLE = 'transfers', COLUMN = mcol,
                  DETAIL = format('Key (%s)=(%s) is not present in table "participants".', mcol, muser);
    END IF;

    -- Paydays: few, and the payday functions already hold the open one's row lock.
    WITH ids AS (SELECT DISTINCT n.payday_id FROM new_rows n WHERE n.payday_id IS NOT NULL),
         locked AS (SELECT d.id FROM payday.paydays d JOIN ids ON ids.payday_id = d.id FOR KEY SHARE OF d)
    SELECT (SELECT count(*) FROM ids), (SELECT count(*) FROM locked) INTO nnames, nlocked;
    IF nlocked <> nnames THEN
        SELECT n.payday_id INTO missing FROM new_rows n
         WHERE n.payday_id IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM payday.paydays d WHERE d.id = n.payday_id)
         LIMIT 1;
        RAISE EXCEPTION 'insert or update on table "transfers" violates foreign key constraint "transfers_payday_id_fkey"'
            USING ERRCODE = '23503', CONSTRAINT = 'transfers_payday_id_fkey',
                  SCHEMA = 'payday', TABLE = 'transfers', COLUMN = 'payday_id',
                  DETAIL = format('Key (payday_id)=(%s) is not present in table "paydays".', missing.payday_id);
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION payday.transfers_references_exist() IS
    'Statement trigger of payday.transfers (INSERT, UPDATE): the foreign keys tipper, tippee -> participants and '
    'payday_id -> paydays, checked once per statement on its transition table. Locks the referenced rows FOR KEY '
    'SHARE. Raises 23503 (constraint transfers_tipper_fkey / transfers_tippee_fkey / transfers_payday_id_fkey) '
    'for a reference to a row that does not exist. Returns NULL.';

CREATE TRIGGER transfers_references_insert
    AFTER INSERT ON payday.transfers
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION payday.transfers_references_exist();
CREATE TRIGGER transfers_references_update
    AFTER UPDATE ON payday.transfers
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION payday.transfers_references_exist();

CREATE FUNCTION payday.participants_rename_transfers() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, payday, pg_temp
    AS $$
BEGIN
    UPDATE payday.transfers SET tipper = NEW.username WHERE tipper = OLD.username;
    UPDATE payday.transfers SET tippee = NEW.username WHERE tippee = OLD.username;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION payday.participants_rename_transfers() IS
    'Row trigger of payday.participants (AFTER UPDATE OF username): cascades a rename into payday.transfers '
    '(tipper, tippee), as ON UPDATE CASCADE did. Returns NULL. Raises nothing of its own.';
CREATE TRIGGER participants_rename_transfers
    AFTER UPDATE OF username ON payday.participants
    FOR EACH ROW WHEN (OLD.username IS DISTINCT FROM NEW.username)
    EXECUTE FUNCTION payday.participants_rename_transfers();

CREATE FUNCTION payday.transfers_still_referenced() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, payday, pg_temp
    AS $$
DECLARE
    gone text;
BEGIN
    IF TG_TABLE_NAME = 'participants' THEN
        SELECT o.username INTO gone FROM old_rows o
         WHERE EXISTS (SELECT 1 FROM payday.transfers t WHERE t.tipper = o.username)
            OR EXISTS (SELECT 1 FROM payday.transfers t WHERE t.tippee = o.username)
         LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'update or delete on table "participants" violates foreign key constraint "transfers_tipper_fkey" on table "transfers"'
                USING ERRCODE = '23503', CONSTRAINT = 'transfers_tipper_fkey', SCHEMA = 'payday', TABLE = 'transfers',
                      DETAIL = format('Key (username)=(%s) is still referenced from table "transfers".', gone);
        END IF;
    ELSE
        SELECT o.id::text INTO gone FROM old_rows o
         WHERE EXISTS (SELECT 1 FROM payday.transfers t WHERE t.payday_id = o.id)
         LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'update or delete on table "paydays" violates foreign key constraint "transfers_payday_id_fkey" on table "transfers"'
                USING ERRCODE = '23503', CONSTRAINT = 'transfers_payday_id_fkey', SCHEMA = 'payday', TABLE = 'transfers',
                      DETAIL = format('Key (id)=(%s) is still referenced from table "transfers".', gone);
        END IF;
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION payday.transfers_still_referenced() IS
    'Statement trigger of payday.participants and payday.paydays (AFTER DELETE): refuses, with 23503 and the name of '
    'the foreign key it stands for, to delete a participant or a payday that payday.transfers still references. '
    'Returns NULL.';
CREATE TRIGGER participants_transfers_referenced
    AFTER DELETE ON payday.participants
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION payday.transfers_still_referenced();
CREATE TRIGGER paydays_transfers_referenced
    AFTER DELETE ON payday.paydays
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION payday.transfers_still_referenced();

-- 4 -------------------------------------------------------------------------------------
DROP INDEX payday.transfers_payday_pair_idx;
CREATE INDEX transfers_payday_idx ON payday.transfers (payday_id);

-- 5 -------------------------------------------------------------------------------------
-- The open payday's row is read through scalar subqueries (one-time InitPlans) rather than
-- joined: a join with it would put the tips under a nested loop, and the planner would no
-- longer know they come out of the index in (tipper, tippee) order.
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
GRANT SELECT ON payday.payday_tips TO payday_app, payday_runner, payday_readonly;  -- as 0002 grants every table
COMMENT ON VIEW payday.payday_tips IS
    'Tips of the open payday before the tipper is looked at (SPEC 4.4): per (tipper, tippee) the latest tip before '
    'ts_start, tippee not suspicious, pair not yet paid a tip in this payday. tippee_claimed: the tippee claimed '
    'before ts_start. payday.due_tips keeps the rows whose tipper takes part in the payday.';

CREATE OR REPLACE VIEW payday.due_tips AS
    SELECT t.tipper, t.tippee, t.amount, t.ctime, t.tippee_claimed, t.payday_id
      FROM payday.payday_tips t
      JOIN payday.participants r
        ON r.username = t.tipper
       AND r.claimed_time < (SELECT o.ts_start FROM payday.open_payday_v o)
       AND r.is_suspicious IS NOT TRUE;

CREATE OR REPLACE VIEW payday.due_charges AS
    SELECT p.username, p.claimed_time, p.balance, o.owed,
           o.owed - p.balance AS short,
           greatest(o.owed - p.balance, f.minimum_charge)::numeric(35,2) AS amount,
           payday.charge_for(greatest(o.owed - p.balance, f.minimum_charge)) AS charge_amount,
           payday.charge_for(greatest(o.owed - p.balance, f.minimum_charge))
               - greatest(o.owed - p.balance, f.minimum_charge)::numeric(35,2) AS fee,
           CASE WHEN p.balanced_account_uri IS NOT NULL THEN 'balanced' ELSE 'stripe' END AS processor,
           coalesce(p.balanced_account_uri, p.stripe_customer_id) AS route,
           o.payday_id
      FROM (SELECT tipper, sum(amount) AS owed, min(payday_id) AS payday_id
              FROM payday.payday_tips WHERE tippee_claimed GROUP BY tipper) o
      JOIN payday.participants p
        ON p.username = o.tipper
       AND p.claimed_time < (SELECT d.ts_start FROM payday.open_payday_v d)
     CROSS JOIN payday.fees() f
     WHERE o.owed > p.balance
       AND p.is_suspicious IS FALSE
       AND coalesce(p.balanced_account_uri, p.stripe_customer_id) IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM payday.exchanges x
                        WHERE x.payday_id = o.payday_id AND x.participant = p.username
                          AND x.kind = 'charge');

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
