CREATE OR REPLACE FUNCTION payday.open_payday()
RETURNS payday.paydays
    LANGUAGE sql STABLE
    SECURITY DEFINER
    SET search_path = pg_catalog, payday, pg_temp
    AS $$ SELECT * FROM payday.paydays WHERE ts_end = payday.open_sentinel() $$;

COMMENT ON FUNCTION payday.open_payday() IS
    'Returns the payday still open (its paydays row), or a row of NULLs when none is open. Takes no argument; raises nothing.';
