CREATE OR REPLACE FUNCTION payday.charge_intents(processor text DEFAULT NULL)
RETURNS SETOF payday.exchanges
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, payday, pg_temp
    -- The due views aggregate every tip of the payday: memory for that, and hash or merge
    -- joins rather than millions of index probes (bench/README.md).
    SET work_mem = '256MB'
    SET jit = off  -- compiling costs more than it saves below ~1M tips
    SET enable_nestloop = off
    -- The tips summed per tipper are hashed, not sorted: the planner, which cannot tell how
    -- few pairs payday.payday_tips looks up in the history, sorted 6M rows on disk for a
    -- merge join instead (1m: 6.0-6.3 s against 6.7-7.1 s for charge_intents(); bench/README.md).
    SET enable_sort = off
    AS $$
DECLARE
    pd payday.paydays := payday.require_open_payday(true, 'payin');
    proc text := payday.require_processor(processor);
BEGIN
    RETURN QUERY
        INSERT INTO payday.exchanges (participant, amount, fee, processor, route, payday_id)
        SELECT d.username, d.amount, d.fee, coalesce(proc, d.processor), d.route, pd.id
          FROM payday.due_charges d
         ORDER BY d.claimed_time, d.username
        RETURNING *;
END
$$;

COMMENT ON FUNCTION payday.charge_intents(text) IS
    'Set-based payday.charge_intent: records a pre charge for every row of payday.charges_due() in one statement '
    'and returns the new exchanges. processor NULL means each participant''s own. '
    'Raises 55000 outside phase payin, 22023 for an unknown processor.';
