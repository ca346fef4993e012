CREATE OR REPLACE FUNCTION payday.require_exchange(exchange_id bigint, kind text)
RETURNS payday.exchanges
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, payday, pg_temp
    AS $$
DECLARE
    x payday.exchanges;
BEGIN
    IF exchange_id IS NULL THEN
        RAISE EXCEPTION 'exchange_id must not be NULL' USING ERRCODE = '22004';
    END IF;
    SELECT * INTO x FROM payday.exchanges e WHERE e.id = exchange_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown exchange id %', exchange_id
            USING ERRCODE = 'P0002', HINT = 'SELECT * FROM payday.pending_exchanges(); lists the exchanges awaiting an outcome.';
    END IF;
    IF kind IS NOT NULL AND x.kind <> kind THEN
        RAISE EXCEPTION 'exchange % is a %, not a %', exchange_id, x.kind, kind
            USING ERRCODE = '55000', HINT = format('Use payday.%s_outcome() for it.', x.kind);
    END IF;
    RETURN x;
END
$$;

COMMENT ON FUNCTION payday.require_exchange(bigint, text) IS
    'Returns the exchange `exchange_id` when it exists and (kind not NULL) is of that kind (charge or credit). '
    'Raises 22004 when exchange_id is NULL, P0002 when unknown, 55000 when of the other kind.';
