CREATE OR REPLACE FUNCTION payday.skim_credit(amount numeric)
RETURNS TABLE (credit_amount numeric(35,2), fee numeric(35,2))
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    SECURITY DEFINER
    SET search_path = pg_catalog, payday, pg_temp
    AS $$
DECLARE
    payout numeric(35,2) := payday.require_amount(amount, 'amount');
BEGIN
    IF payout <= 0.30 THEN
        RAISE EXCEPTION 'amount % does not cover the 0.30 payout fee', payout
            USING ERRCODE = '22023', HINT = 'The minimum payout is 10.00.';
    END IF;
    fee := 0.30::numeric(35,2);
    credit_amount := (payout - fee)::numeric(35,2);
    RETURN NEXT;
END
$$;

COMMENT ON FUNCTION payday.skim_credit(numeric) IS
    'Payout fee maths: returns one row (credit_amount, fee) = (amount - 0.30, 0.30). '
    'Raises 22023 when amount does not exceed the 0.30 fee, and like payday.require_amount for a bad amount.';
