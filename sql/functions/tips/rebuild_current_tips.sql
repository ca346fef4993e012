CREATE OR REPLACE FUNCTION payday.rebuild_current_tips() RETURNS bigint
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, payday, pg_temp
    SET work_mem = '256MB'
    SET maintenance_work_mem = '256MB'
    SET jit = off
    AS $$
DECLARE
    n bigint;
BEGIN
    IF to_regclass('payday.current_tips') IS NULL THEN
        RAISE EXCEPTION 'rebuild_current_tips: this database has no payday.current_tips (schema below 0012)'
            USING ERRCODE = '55000', HINT = 'Run `payday migrate`.';
    END IF;
    -- No tip is written while the table is rebuilt: each write would wait, then go through
    -- the triggers into the new rows.
    LOCK TABLE payday.tips IN SHARE MODE;
    TRUNCATE payday.current_tips;
    INSERT INTO payday.current_tips (tipper, tippee, tip_id, amount, ctime, mtime)
    SELECT DISTINCT ON (x.tipper, x.tippee) x.tipper, x.tippee, x.id, x.amount, x.ctime, x.mtime
      FROM payday.tips x
     ORDER BY x.tipper, x.tippee, x.mtime DESC, x.id DESC;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

COMMENT ON FUNCTION payday.rebuild_current_tips() IS
    'Recomputes payday.current_tips (schema 0012) from payday.tips: per pair, its tip with the latest mtime, then the '
    'highest id. Takes payday.tips in SHARE mode first, so tips written meanwhile wait and then go through the '
    'triggers. Returns the number of pairs. The schema owner''s (no grant); the migration and the benchmark''s '
    'generator call it. Raises 55000 when the schema has no current_tips (below 0012).';
