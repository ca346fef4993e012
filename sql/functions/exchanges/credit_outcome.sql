CREATE OR REPLACE FUNCTION payday.credit_outcome(
    exchange_id bigint,
    succeeded boolean,
    error text DEFAULT NULL,
    processor_ref text DEFAULT NULL
) RETURNS payday.exchanges
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, payday, pg_temp
    AS $$
DECLARE
    x payday.exchanges := payday.require_exchange(exchange_id, 'credit');
BEGIN
    PERFORM payday.record_outcomes(ARRAY[x.id], ARRAY[succeeded], ARRAY[error], ARRAY[processor_ref]);
    SELECT * INTO x FROM payday.exchanges e WHERE e.id = x.id;
    RETURN x;
END
$$;

COMMENT ON FUNCTION payday.credit_outcome(bigint, boolean, text, text) IS
    'Records the outcome of a pre payout (see payday.record_outcomes for its effects). succeeded true: the balance '
    'loses the whole payout (credit + fee); false: error (required) goes to last_ach_result and the balance is '
    'unchanged. Returns the exchange row. Recording the same outcome twice is a no-op. Raises 22004 for NULL, P0002 '
    'for an unknown exchange, 55000 when the exchange is a charge, 22023 for a failure without error text, PD002 for '
    'a contradicting outcome.';
