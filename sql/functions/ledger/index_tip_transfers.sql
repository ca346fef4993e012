CREATE OR REPLACE FUNCTION payday.index_tip_transfers(payday_id bigint) RETURNS integer
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, payday, pg_temp
    SET maintenance_work_mem = '256MB'  -- each index build sorts a payday's transfers in memory
    AS $$
DECLARE
    name text;
    part regclass;
    built integer := 0;
    idx record;
BEGIN
    IF payday_id IS NULL OR payday_id < 1 THEN
        RAISE EXCEPTION 'index_tip_transfers: payday_id must be a payday id (at least 1), not %', coalesce(payday_id::text, 'NULL')
            USING ERRCODE = CASE WHEN payday_id IS NULL THEN '22004' ELSE '22023' END;
    END IF;
    name := format('transfers_payday_%s', payday_id);
    part := to_regclass(format('payday.%I', name));
    IF part IS NULL THEN
        RAISE EXCEPTION 'index_tip_transfers: there is no table payday.% (payday % has not paid its tips)', name, payday_id
            USING ERRCODE = '42P01', HINT = 'payday.pay_tips() creates it; call this function after it.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = part AND i.inhparent = 'payday.transfers'::regclass) THEN
        RAISE EXCEPTION 'index_tip_transfers: payday.% is not a partition of payday.transfers', name
            USING ERRCODE = '55000', HINT = 'payday.pay_tips() attaches it (payday.attach_tip_transfers()); a DBA must look at a table left detached.';
    END IF;
    -- All there (finish() after the runner built them): nothing to lock.
    IF NOT EXISTS (SELECT 1 FROM unnest(ARRAY['tipper', 'tippee', 'payday']) AS v(suffix)
                    WHERE to_regclass(format('payday.%I', name || '_' || v.suffix || '_idx')) IS NULL) THEN
        RETURN 0;
    END IF;
    -- One builder at a time (the mode conflicts with itself): a second caller waits here
    -- and then finds the indexes built. Readers of the table are not held up; a rename of
    -- a participant, which rewrites their transfers, waits for the builds.
    EXECUTE format('LOCK TABLE payday.%I IN SHARE ROW EXCLUSIVE MODE', name);
    FOR idx IN SELECT * FROM (VALUES ('tipper', '(tipper)'), ('tippee', '(tippee)'),
                                     ('payday', 'USING brin (payday_id) WITH (autosummarize = on)')) AS v(suffix, def)
    LOOP
        -- Below schema 0015 these are partitions of the partitioned table's indexes, built
        -- before the attach under the same names: nothing to do then.
        IF to_regclass(format('payday.%I', name || '_' || idx.suffix || '_idx')) IS NULL THEN
            EXECUTE format('CREATE INDEX %I ON payday.%I %s', name || '_' || idx.suffix || '_idx', name, idx.def);
            built := built + 1;
        END IF;
    END LOOP;
    RETURN built;
END
$$;

COMMENT ON FUNCTION payday.index_tip_transfers(bigint) IS
    'Builds the tipper, tippee and BRIN payday_id indexes of payday.transfers_payday_<payday_id>, the tip transfers '
    'payday.pay_tips() wrote and attached (from schema 0015 they are each partition''s own, so they need not be built '
    'inside pay_tips()). The runner calls it on a connection of its own while the payout runs; payday.finish() calls '
    'it before its checks, so a payday never closes without them. Returns how many it built (0: all there). One '
    'caller at a time: a second waits, then finds them built. Raises 22004/22023 for a NULL or non-positive '
    'payday_id, 42P01 when the table does not exist, 55000 when it is not attached to payday.transfers.';
