CREATE OR REPLACE FUNCTION payday.require_open_payday(lock boolean, VARIADIC phases text[])
RETURNS payday.paydays
    LANGUAGE plpgsql
    SET search_path = pg_catalog, payday, pg_temp
    AS $$
DECLARE
    pd payday.paydays;
BEGIN
    IF phases IS NULL OR cardinality(phases) = 0 THEN
        RAISE EXCEPTION 'require_open_payday needs at least one phase'
            USING ERRCODE = '22004';
    END IF;
    IF coalesce(lock, false) THEN
        SELECT * INTO pd FROM payday.paydays WHERE ts_end = payday.open_sentinel() FOR UPDATE;
    ELSE
        SELECT * INTO pd FROM payday.paydays WHERE ts_end = payday.open_sentinel();
    END IF;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no payday is open'
            USING ERRCODE = '55000', HINT = 'Start one with SELECT * FROM payday.start();';
    END IF;
    IF NOT pd.phase = ANY (phases) THEN
        RAISE EXCEPTION 'payday % is in phase %, this step needs phase %', pd.id, pd.phase, array_to_string(phases, ' or ')
            USING ERRCODE = '55000',
                  HINT = CASE pd.phase
                      WHEN 'payin' THEN 'Finish charges, then SELECT * FROM payday.pay_tips();'
                      WHEN 'clear' THEN 'Next step: SELECT payday.clear_pending();'
                      WHEN 'payout' THEN 'Finish credits, then SELECT * FROM payday.finish();'
                      ELSE 'See docs/dba.md for the order of steps.' END;
    END IF;
    RETURN pd;
END
$$;

COMMENT ON FUNCTION payday.require_open_payday(boolean, text[]) IS
    'Returns the open payday (locked FOR UPDATE when lock is true) when its phase is one of `phases`. '
    'Raises 55000 when no payday is open or it is in another phase (the hint names the next step); 22004 when no phase is given.';
