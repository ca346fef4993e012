CREATE OR REPLACE FUNCTION payday.pending_exchanges()
RETURNS SETOF payday.exchanges
    LANGUAGE sql STABLE
    SECURITY DEFINER
    SET search_path = pg_catalog, payday, pg_temp
    AS $$ SELECT * FROM payday.exchanges WHERE status = 'pre' ORDER BY id $$;

COMMENT ON FUNCTION payday.pending_exchanges() IS
    'Returns every exchange still in state pre (recorded before a processor call, outcome not yet known), '
    'oldest first: the ones to reconcile with the processor before anything new is charged. Raises nothing.';
