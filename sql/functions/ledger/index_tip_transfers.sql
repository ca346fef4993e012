CREATE OR REPLACE FUNCTION payday.index_tip_transfers(payday_id bigint) RETURNS integer
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, payday, pg_temp
    SET maintenance_work_mem = '256MB'  -- each index build sorts a payday's transfers in memory
    AS $$
DECLARE
    name text := format('transfers_payday_%s', payday_id);
    locked boolean := false;
    built integer := 0;
    idx record;
BEGIN
    PERFORM payday.require_tip_transfers(payday_id, true, 'index_tip_transfers');
    FOR idx IN SELECT v.suffix, v.def, format('payday.%I', name || '_' || v.suffix || '_idx') AS qualified
                 FROM (VALUES ('tipper', '(tipper)'), ('tippee', '(tippee)'),
                              ('payday', 'USING brin (payday_id) WITH (autosummarize = on)')) AS v(suffix, def)
    LOOP
        -- Below schema 0015 these are partitions of the partitioned table's indexes, built
        -- before the attach under the same names: nothing to do then, nor when the runner
        -- built them already (finish() calls this too): nothing is locked.
        CONTINUE WHEN to_regclass(idx.qualified) IS NOT NULL;
        IF NOT locked THEN
            -- One builder at a time (the mode conflicts with itself): a second caller waits
            -- here, then finds the indexes built. Readers of the table are not held up; a
            -- rename of a participant, which rewrites their transfers, waits for the builds.
            EXECUTE format('LOCK TABLE payday.%I IN SHARE ROW EXCLUSIVE MODE', name);
            locked := true;
            CONTINUE WHEN to_regclass(idx.qualified) IS NOT NULL;  -- built by the caller we waited for
        END IF;
        EXECUTE format('CREATE INDEX %I ON payday.%I %s', name || '_' || idx.suffix || '_idx', name, idx.def);
        built := built + 1;
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
