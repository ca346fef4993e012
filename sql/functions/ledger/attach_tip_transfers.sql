CREATE OR REPLACE FUNCTION payday.attach_tip_transfers(payday_id bigint) RETURNS regclass
    LANGUAGE plpgsql
    SET search_path = pg_catalog, payday, pg_temp
    SET maintenance_work_mem = '256MB'  -- each index build sorts a payday's transfers in memory
    AS $$
DECLARE
    span constant bigint := 1099511627776;  -- 2^40 ids per payday (sql/schema/0006_transfers_partitions.sql)
    name text := format('transfers_payday_%s', payday_id);
    part regclass := payday.require_tip_transfers(payday_id, false, 'attach_tip_transfers');
BEGIN
    -- One sorted build per index instead of a B-tree descent per row and index. ATTACH
    -- adopts them as partitions of payday.transfers' own indexes, and the CHECK on ids
    -- spares it a scan of the rows. Row triggers come with the attachment; TRUNCATE's is
    -- per table.
    IF NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conrelid = part AND c.conname = name || '_ids') THEN
        EXECUTE format('ALTER TABLE payday.%I ADD CONSTRAINT %I CHECK (id >= %s AND id < %s)',
                       name, name || '_ids', payday_id * span, (payday_id + 1) * span);
    END IF;
    EXECUTE format('ALTER TABLE payday.%I ADD CONSTRAINT %I PRIMARY KEY (id)', name, name || '_pkey');
    -- Schemas 0006 to 0014: the tipper, tippee and payday_id indexes are the partitioned
    -- table's, so the partition must have them to be attached. From 0015 they are each
    -- partition's own, built after the attach by payday.index_tip_transfers() (by the
    -- runner while the payout runs, or by payday.finish()), out of pay_tips()' way.
    IF to_regclass('payday.transfers_tipper_idx') IS NOT NULL THEN
        EXECUTE format('CREATE INDEX %I ON payday.%I (tipper)', name || '_tipper_idx', name);
        EXECUTE format('CREATE INDEX %I ON payday.%I (tippee)', name || '_tippee_idx', name);
        EXECUTE format('CREATE INDEX %I ON payday.%I USING brin (payday_id) WITH (autosummarize = on)',
                       name || '_payday_idx', name);
    END IF;
    EXECUTE format('ALTER TABLE payday.transfers ATTACH PARTITION payday.%I FOR VALUES FROM (%s) TO (%s)',
                   name, payday_id * span, (payday_id + 1) * span);
    EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON payday.%I '
                   'FOR EACH STATEMENT EXECUTE FUNCTION payday.ledger_append_only(%L)',
                   name || '_no_truncate', name, 'tipper,tippee');
    EXECUTE format('GRANT SELECT ON payday.%I TO payday_app, payday_runner, payday_readonly', name);
    EXECUTE format('COMMENT ON TABLE payday.%I IS %L', name,
                   format('The tip transfers of payday %s (payday.pay_tips()): a partition of payday.transfers.', payday_id));
    RETURN part;
END
$$;

COMMENT ON FUNCTION payday.attach_tip_transfers(bigint) IS
    'Makes payday.transfers_payday_<payday_id>, filled by payday.pay_tips() in the same transaction, a partition of '
    'payday.transfers (ids [payday_id * 2^40, (payday_id + 1) * 2^40)): builds its primary key (below schema 0015 '
    'also its tipper, tippee and payday_id indexes, which from 0015 payday.index_tip_transfers() builds after the '
    'attach), attaches it, refuses TRUNCATE on it and lets the reading roles read it. Returns the table. '
    'Raises 22004/22023 for a NULL or non-positive payday_id, 42P01 when the table does not exist, 55000 when it is '
    'already attached, 23514 when a row''s id lies outside the payday''s range. The schema owner''s (no grant).';
