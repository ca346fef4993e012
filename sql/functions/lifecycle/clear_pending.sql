CREATE OR REPLACE FUNCTION payday.clear_pending()
RETURNS bigint
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, payday, pg_temp
    AS $$
DECLARE
    pd payday.paydays := payday.require_open_payday(true, 'clear');
    ncleared bigint;
BEGIN
    UPDATE payday.participants
       SET balance = balance + pending,
           pending = NULL
     WHERE pending IS NOT NULL;
    GET DIAGNOSTICS ncleared = ROW_COUNT;
    UPDATE payday.paydays SET phase = 'payout' WHERE id = pd.id;
    RETURN ncleared;
END
$$;

COMMENT ON FUNCTION payday.clear_pending() IS
    'SPEC 4.7: adds every pending to its balance and sets pending back to NULL, then moves the open payday to '
    'phase payout. Returns how many participants were cleared. Raises 55000 when no payday is open or it is not '
    'in phase clear (run payday.pay_tips() first).';
