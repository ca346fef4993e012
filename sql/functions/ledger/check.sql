CREATE OR REPLACE FUNCTION payday.check()
RETURNS TABLE (what text, who text, expected text, actual text)
    LANGUAGE plpgsql STABLE
    SECURITY DEFINER
    SET search_path = pg_catalog, payday, pg_temp
    AS $$
BEGIN
    RETURN QUERY SELECT * FROM payday.check_ledger(false);
END
$$;

COMMENT ON FUNCTION payday.check()
    IS 'Checks the invariants of SPEC 6 over the whole history and returns one row per violation (what, who, expected, '
       'actual); no row when all hold: at most one open payday; no negative balance or pending; pending NULL outside '
       'a payday; every balance (+ pending) equals opening_balance + succeeded charges - succeeded payouts and their '
       'fees + transfers in - transfers out, and every name in transfers and succeeded exchanges is a participant; '
       'each payday''s counters equal what its transfers and exchanges say. '
       'Also: no tip transfer of the open payday involves a participant who is suspicious (unless reversed); an '
       'exchange''s recorded_at is set iff it is not pre; no pre exchange belongs to any payday but the open one; '
       'each pair''s row of payday.current_tips (schema 0012) is its latest tip in payday.tips. '
       'Re-adds every transfer and exchange: payday.check_recent() checks the same from the latest ledger mark. '
       'Takes no argument; raises nothing.';
