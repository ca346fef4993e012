CREATE OR REPLACE FUNCTION payday.require_participant(
    username text,
    what text DEFAULT 'participant',
    lock boolean DEFAULT false
) RETURNS payday.participants
    LANGUAGE plpgsql
    SET search_path = pg_catalog, payday, pg_temp
    AS $$
DECLARE
    p payday.participants;
BEGIN
    IF username IS NULL THEN
        RAISE EXCEPTION '% username must not be NULL', coalesce(what, 'participant')
            USING ERRCODE = '22004';
    END IF;
    IF coalesce(lock, false) THEN
        SELECT * INTO p FROM payday.participants AS x WHERE x.username = require_participant.username FOR UPDATE;
    ELSE
        SELECT * INTO p FROM payday.participants AS x WHERE x.username = require_participant.username;
    END IF;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown % "%"', coalesce(what, 'participant'), username
            USING ERRCODE = 'P0002', HINT = 'Check the spelling; usernames are case-sensitive.';
    END IF;
    RETURN p;
END
$$;

COMMENT ON FUNCTION payday.require_participant(text, text, boolean) IS
    'Returns the participants row for `username` (locked FOR UPDATE when lock is true). '
    'Raises 22004 when username is NULL, P0002 when no such participant exists.';
