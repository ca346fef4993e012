CREATE OR REPLACE FUNCTION payday.check_recent()
RETURNS TABLE (what text, who text, expected text, actual text)
    LANGUAGE plpgsql STABLE
    SECURITY DEFINER
    SET search_path = pg_catalog, payday, pg_temp
    AS $$
BEGIN
    RETURN QUERY SELECT * FROM payday.check_ledger(true);
END
$$;

COMMENT ON FUNCTION payday.check_recent()
    IS 'payday.check() from the latest ledger mark (payday.ledger_marks, written by each payday.finish() once the '
       'invariants held): every balance (+ pending) equals its marked balance (else its opening balance) + what the '
       'transfers and succeeded exchanges written since moved, and only the paydays since have their counters and '
       'exchanges checked. Its cost follows what happened since the mark, not the whole history: the runner''s check '
       'before a payday, and finish(), use it. It trusts the history before the mark, which the append-only triggers '
       'keep; payday.check() re-adds it all. Same rows as payday.check() when there is no mark. Raises nothing.';
