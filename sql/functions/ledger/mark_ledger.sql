CREATE OR REPLACE FUNCTION payday.mark_ledger(payday_id bigint) RETURNS bigint
    LANGUAGE plpgsql
    SET search_path = pg_catalog, payday, pg_temp
    SET maintenance_work_mem = '256MB'  -- the primary key of a million balances, sorted in memory
    AS $$
DECLARE
    span constant bigint := 1099511627776;  -- 2^40: ids below are the ledger partition's (schema 0006)
    pd payday.paydays;
    n bigint;
BEGIN
    IF payday_id IS NULL THEN
        RAISE EXCEPTION 'mark_ledger: payday_id must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF to_regclass('payday.ledger_marks') IS NULL THEN
        RAISE EXCEPTION 'mark_ledger: this database has no ledger marks (schema below 0010)'
            USING ERRCODE = '55000', HINT = 'Run `payday migrate`.';
    END IF;
    -- Before reading any name: a rename waits for this mark, or this mark for it (the
    -- rename trigger takes ROW SHARE), and no second mark is written at the same time.
    LOCK TABLE payday.ledger_marks IN EXCLUSIVE MODE;
    SELECT * INTO pd FROM payday.paydays d WHERE d.id = mark_ledger.payday_id;
    IF NOT FOUND OR pd.ts_end = payday.open_sentinel() THEN
        RAISE EXCEPTION 'mark_ledger: payday % is not a closed payday', payday_id
            USING ERRCODE = '55000', HINT = 'payday.finish() marks the ledger of the payday it closes.';
    END IF;
    IF EXISTS (SELECT 1 FROM payday.paydays d WHERE d.id > pd.id)
       OR EXISTS (SELECT 1 FROM payday.ledger_marks m WHERE m.payday_id >= pd.id) THEN
        RAISE EXCEPTION 'mark_ledger: payday % is not the latest payday, or its ledger is marked already', payday_id
            USING ERRCODE = '55000', HINT = 'Only the payday just closed can be marked, once.';
    END IF;

    -- Every balance, as the check that finish() has just passed verified it; pending is NULL
    -- outside a payday. Written into a new table, then put in the place of the previous mark:
    -- its primary key is then built in one sorted pass, 0.85-1.2 s at 1m against 1.5-2.3 s
    -- for TRUNCATE and INSERT into the previous table's index.
    DROP TABLE IF EXISTS payday.ledger_mark_next;
    CREATE TABLE payday.ledger_mark_next AS
        SELECT p.username, p.balance FROM payday.participants p WHERE p.balance <> p.opening_balance;
    GET DIAGNOSTICS n = ROW_COUNT;
    ALTER TABLE payday.ledger_mark_next ALTER COLUMN balance SET NOT NULL,
        ADD CONSTRAINT ledger_mark_next_pkey PRIMARY KEY (username);
    DROP TABLE IF EXISTS payday.ledger_mark;
    ALTER TABLE payday.ledger_mark_next RENAME TO ledger_mark;
    ALTER INDEX payday.ledger_mark_next_pkey RENAME TO ledger_mark_pkey;
    GRANT SELECT ON payday.ledger_mark TO payday_app, payday_runner, payday_readonly;
    COMMENT ON TABLE payday.ledger_mark IS
        'The balances of the latest ledger mark (payday.ledger_marks): one row per participant whose balance was not '
        'their opening balance. Replaced by each payday.finish().';

    -- Manual transfers and reversals are numbered by a sequence below 2^40. None is being
    -- written now: each takes the open payday's row lock, which finish() holds.
    INSERT INTO payday.ledger_marks (payday_id, last_ledger_transfer, nbalances)
    VALUES (pd.id, coalesce((SELECT max(t.id) FROM payday.transfers t WHERE t.id < span), 0), n);
    RETURN n;
END
$$;

COMMENT ON FUNCTION payday.mark_ledger(bigint) IS
    'Called by payday.finish() once the invariants hold, in its transaction: writes every balance that differs from '
    'the opening balance into a new payday.ledger_mark (replacing the previous mark) and records the mark in '
    'payday.ledger_marks (payday_id, the last transfer id below 2^40, the number of balances). payday.check_recent() '
    'then adds only what came after. Returns the number of balances marked. Raises 22004 for NULL, 55000 when the schema has no '
    'marks, the payday is not closed, not the latest, or already marked. The schema owner''s (no grant): a mark is '
    'only as good as the check before it.';
