CREATE OR REPLACE FUNCTION payday.pending_exchanges()
RETURNS SETOF payday.exchanges
    LANGUAGE sql STABLE
    SECURITY DEFINER
    SET search_path = pg_catalog, payday, pg_temp
    -- Pre exchanges exist only in the open payday (intents are recorded only there, and
    -- finish() refuses to close a payday with one; check() reports any other): they are
    -- looked up among the open payday's exchanges (exchanges_one_per_kind_idx), not in the
    -- whole history. Since schema 0009 no index is keyed on status, so that an outcome is
    -- written in place (sql/schema/0009_exchanges_in_place.sql).
    AS $$ SELECT x.* FROM payday.exchanges x
           WHERE x.payday_id = (SELECT o.id FROM payday.open_payday_v o) AND x.status = 'pre'
           ORDER BY x.id $$;

COMMENT ON FUNCTION payday.pending_exchanges() IS
    'Returns every exchange still in state pre (recorded before a processor call, outcome not yet known), '
    'oldest first: the ones to reconcile with the processor before anything new is charged. Pre exchanges belong '
    'to the open payday only (payday.check() reports any other); none when no payday is open. Raises nothing.';
