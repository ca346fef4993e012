CREATE OR REPLACE FUNCTION payday.start()
RETURNS payday.paydays
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, payday, pg_temp
    AS $$
DECLARE
    pd payday.paydays;
BEGIN
    -- Resume the open payday, or open a new one. The UNIQUE ts_end sentinel makes a
    -- second open payday impossible, even for two callers racing here.
    SELECT * INTO pd FROM payday.paydays WHERE ts_end = payday.open_sentinel() FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO payday.paydays DEFAULT VALUES
            ON CONFLICT (ts_end) DO NOTHING
            RETURNING * INTO pd;
        IF NOT FOUND THEN
            SELECT * INTO pd FROM payday.paydays WHERE ts_end = payday.open_sentinel() FOR UPDATE;
        END IF;
    END IF;

    -- Pending accounting for everyone claimed before ts_start. Only while charging:
    -- once tips are paid and cleared, pending must stay NULL.
    IF pd.phase = 'payin' THEN
        UPDATE payday.participants
           SET pending = 0
         WHERE pending IS NULL
           AND claimed_time < pd.ts_start;
    END IF;
    RETURN pd;
END
$$;

COMMENT ON FUNCTION payday.start() IS
    'Opens a new payday, or returns the one still open (resume). While the payday is in phase payin it sets '
    'pending = 0 where NULL for every participant claimed before ts_start (idempotent). '
    'Returns the paydays row; ts_start is the snapshot time of every later step. Raises nothing of its own.';
