-- Every partition of payday.transfers gets its own tipper, tippee and payday_id index,
-- under the name a partition's index had when they were the partitioned table's, unless it
-- has one by that name: after 0015's upgrade dropped the partitioned ones (all are built
-- again), and before its downgrade makes them the partitioned table's again (only what an
-- open payday's partition lacks is built).
DO $$
DECLARE
    part text;
BEGIN
    FOR part IN SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                 WHERE i.inhparent = 'payday.transfers'::regclass ORDER BY c.relname
    LOOP
        EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON payday.%I (tipper)', part || '_tipper_idx', part);
        EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON payday.%I (tippee)', part || '_tippee_idx', part);
        EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON payday.%I USING brin (payday_id) WITH (autosummarize = on)',
                       part || '_payday_idx', part);
    END LOOP;
END
$$;
