CREATE OR REPLACE FUNCTION payday.upcharge(amount numeric)
RETURNS TABLE (charge_amount numeric(35,2), fee numeric(35,2))
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    SECURITY DEFINER
    SET search_path = pg_catalog, payday, pg_temp
    AS $$
DECLARE
    nominal numeric(35,2) := payday.require_amount(amount, 'amount');
BEGIN
    -- (amount + 0.30) * 1.039, rounded up to the cent.
    charge_amount := payday.charge_for(nominal);
    fee := (charge_amount - nominal)::numeric(35,2);
    RETURN NEXT;
END
$$;

COMMENT ON FUNCTION payday.upcharge(numeric) IS
    'Card fee maths: returns one row (charge_amount, fee) with charge_amount = (amount + 0.30) * 1.039 '
    'rounded up to the cent and fee = charge_amount - amount. No minimum is applied here '
    '(payday.charges_due raises short amounts to 9.32 first). Raises like payday.require_amount for a bad amount.';
