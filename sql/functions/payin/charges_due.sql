CREATE OR REPLACE FUNCTION payday.charges_due()
RETURNS TABLE (username text, short numeric(35,2), amount numeric(35,2), charge_amount numeric(35,2),
               fee numeric(35,2), processor text, route text)
    LANGUAGE plpgsql STABLE
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
BEGIN
    PERFORM payday.require_open_payday(false, 'payin');
    RETURN QUERY
        SELECT d.username, d.short, d.amount, d.charge_amount, d.fee, d.processor, d.route
          FROM payday.due_charges d
         ORDER BY d.claimed_time, d.username;
END
$$;

COMMENT ON FUNCTION payday.charges_due() IS
    'Lists the card charges the open payday still has to make (SPEC 4.5), oldest claim first: username, short '
    '(owed - balance), amount (what the balance receives: short raised to the 9.32 minimum), charge_amount and fee '
    '(payday.upcharge of amount), processor (balanced when the participant has a balanced_account_uri, else stripe) '
    'and route (that uri or customer id). Changes nothing. Raises 55000 when no payday is open or it is not in phase payin.';
