-- Back to 0014: the tipper, tippee and payday_id indexes are the partitioned table's again.
-- A partition that lacks one (an open payday whose indexes were not built yet) gets it
-- under the name it would have had; then each partitioned index takes every partition's
-- matching index as its own, without building it again.
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

CREATE INDEX transfers_tipper_idx ON payday.transfers (tipper);
CREATE INDEX transfers_tippee_idx ON payday.transfers (tippee);
CREATE INDEX transfers_payday_idx ON payday.transfers USING brin (payday_id) WITH (autosummarize = on);
