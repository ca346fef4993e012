CREATE OR REPLACE FUNCTION payday.require_amount(
    amount numeric,
    what text,
    allow_zero boolean DEFAULT false
) RETURNS numeric(35,2)
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, payday, pg_temp
    AS $$
BEGIN
    IF amount IS NULL THEN
        RAISE EXCEPTION '% must not be NULL', coalesce(what, 'amount')
            USING ERRCODE = '22004', HINT = 'Pass an amount in dollars, e.g. 12.50.';
    END IF;
    IF amount = 'NaN'::numeric OR amount IN ('Infinity'::numeric, '-Infinity'::numeric) THEN
        RAISE EXCEPTION '% must be a finite number, got %', coalesce(what, 'amount'), amount
            USING ERRCODE = '22023', HINT = 'Pass an amount in dollars, e.g. 12.50.';
    END IF;
    IF amount < 0 OR (amount = 0 AND NOT coalesce(allow_zero, false)) THEN
        RAISE EXCEPTION '% must be %, got %', coalesce(what, 'amount'),
            CASE WHEN coalesce(allow_zero, false) THEN 'zero or more' ELSE 'positive' END, amount
            USING ERRCODE = '22023';
    END IF;
    IF amount <> round(amount, 2) THEN
        RAISE EXCEPTION '% must be a whole number of cents, got %', coalesce(what, 'amount'), amount
            USING ERRCODE = '22023', HINT = 'Round to two decimal places before calling.';
    END IF;
    IF amount >= 1e33 THEN
        RAISE EXCEPTION '% is beyond the range of numeric(35,2): %', coalesce(what, 'amount'), amount
            USING ERRCODE = '22003';
    END IF;
    RETURN amount::numeric(35,2);
END
$$;

COMMENT ON FUNCTION payday.require_amount(numeric, text, boolean) IS
    'Validates a money argument named `what`: returns it as numeric(35,2). Raises 22004 when NULL; '
    '22023 when NaN, infinite, negative, zero (unless allow_zero), or finer than a cent; '
    '22003 when beyond numeric(35,2).';
