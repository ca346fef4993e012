CREATE OR REPLACE FUNCTION payday.require_processor(processor text)
RETURNS text
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, payday, pg_temp
    AS $$
BEGIN
    IF processor IS NOT NULL AND processor NOT IN ('balanced', 'stripe', 'sandbox', 'manual') THEN
        RAISE EXCEPTION 'unknown processor "%"', processor
            USING ERRCODE = '22023', HINT = 'Use balanced, stripe, sandbox or manual; NULL means the participant''s own.';
    END IF;
    RETURN processor;
END
$$;

COMMENT ON FUNCTION payday.require_processor(text) IS
    'Returns `processor` when it is NULL (the participant''s own) or one of balanced, stripe, sandbox, manual. '
    'Raises 22023 otherwise.';
