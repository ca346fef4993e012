CREATE OR REPLACE FUNCTION payday.finish()
RETURNS payday.paydays
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, payday, pg_temp
    AS $$
DECLARE
    pd payday.paydays := payday.require_open_payday(true, 'payout');
    npre bigint;
    violations text;
BEGIN
    SELECT count(*) INTO npre FROM payday.exchanges WHERE payday_id = pd.id AND status = 'pre';
    IF npre > 0 THEN
        RAISE EXCEPTION 'payday % still has % exchange(s) in state pre', pd.id, npre
            USING ERRCODE = '55000',
                  HINT = 'Record each outcome (payday.credit_outcome / payday.charge_outcome) first; see payday.pending_exchanges().';
    END IF;

    -- From the latest ledger mark (the previous payday's close): what this payday, and
    -- anything since that close, wrote. The whole history is payday.check()'s.
    -- The payday's tip transfers get their tipper, tippee and payday_id indexes now, unless
    -- the runner built them while the payout ran (schema 0015; a no-op below it, where
    -- pay_tips() built them). Before the checks, which look up suspicious participants' transfers.
    IF to_regclass(format('payday.transfers_payday_%s', pd.id)) IS NOT NULL THEN
        PERFORM payday.index_tip_transfers(pd.id);
    END IF;

    SELECT string_agg(format('%s %s: expected %s, actual %s', what, who, expected, actual), '; ')
      INTO violations
      FROM (SELECT * FROM payday.check_recent() LIMIT 20) c;
    IF violations IS NOT NULL THEN
        RAISE EXCEPTION 'payday % not closed: invariants fail: %', pd.id, violations
            USING ERRCODE = 'PD004',
                  HINT = 'SELECT * FROM payday.check(); lists every violation. Fix the data, then call payday.finish() again.';
    END IF;

    UPDATE payday.paydays
       SET ts_end = greatest(clock_timestamp(), ts_start), phase = 'done'
     WHERE id = pd.id
    RETURNING * INTO pd;
    -- Every balance just verified, for the next checks to start from (schema 0010).
    IF to_regclass('payday.ledger_marks') IS NOT NULL THEN
        PERFORM payday.mark_ledger(pd.id);
    END IF;
    RETURN pd;
END
$$;

COMMENT ON FUNCTION payday.finish() IS
    'SPEC 4.9: closes the open payday (ts_end = now, phase done) after building its tip transfers'' indexes if the '
    'runner has not (payday.index_tip_transfers()) and checking the invariants (payday.check_recent(): '
    'from the previous close), then marks every balance for the next checks (payday.mark_ledger()). Returns the closed '
    'paydays row. Raises 55000 when no payday is open, it is not in phase payout, or an exchange is still pre; '
    'PD004 when payday.check_recent() reports a violation (the message lists up to 20).';
