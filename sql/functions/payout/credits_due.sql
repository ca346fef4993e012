CREATE OR REPLACE FUNCTION payday.credits_due()
RETURNS TABLE (username text, balance numeric(35,2), obligations numeric(35,2), payout numeric(35,2),
               credit_amount numeric(35,2), fee numeric(35,2), route text)
    LANGUAGE plpgsql STABLE
    SECURITY DEFINER
    SET search_path = pg_catalog, payday, pg_temp
    -- The due views aggregate every tip of the payday: memory for that, and hash or merge
    -- joins rather than millions of index probes (bench/README.md).
    SET work_mem = '256MB'
    SET jit = off  -- compiling costs more than it saves below ~1M tips
    SET enable_nestloop = off
    AS $$
BEGIN
    PERFORM payday.require_open_payday(false, 'payout');
    RETURN QUERY
        SELECT d.username, d.balance, d.obligations, d.payout, d.credit_amount, d.fee, d.route
          FROM payday.due_credits d
         ORDER BY d.claimed_time, d.username;
END
$$;

COMMENT ON FUNCTION payday.credits_due() IS
    'Lists the payouts the open payday still has to make (SPEC 4.8), oldest claim first: username, balance, '
    'obligations (current tips to non-suspicious tippees), payout (balance - obligations, at least 10.00), '
    'credit_amount and fee (payday.skim_credit of payout) and route (balanced_account_uri). The processor''s merchant '
    'check is the caller''s, before payday.credit_intent. Changes nothing. Raises 55000 when no payday is open or it '
    'is not in phase payout.';
