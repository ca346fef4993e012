-- 0016: payday.exchanges checks its references once per statement instead of once per row
-- (issue 4; the figures are in bench/README.md, seventeenth round), as payday.transfers
-- has since 0003.
--
-- A foreign key's RI trigger runs a query per inserted row and per key: charge_intents()
-- and every credit_intents() batch paid two lookups an exchange, participant and payday,
-- each through the trigger queue and SPI. The statement trigger below looks the
-- statement's participants and paydays up in one join each. The behaviour of the two
-- foreign keys it replaces is kept:
--   * an unknown participant or payday is refused with SQLSTATE 23503 and the old
--     constraint name (exchanges_participant_fkey, exchanges_payday_id_fkey);
--   * referenced rows are locked FOR KEY SHARE, as a foreign key locks them, so a
--     concurrent rename or delete cannot slip in between;
--   * a participant's rename cascades into exchanges (ON UPDATE CASCADE);
--   * deleting a participant or a payday that exchanges still reference is refused (23503);
--   * TRUNCATE of participants is refused (PD005), as the cascade into exchanges refused it;
--   * an exchange whose participant or payday is changed is checked again (in practice
--     only the rename's cascade changes it: the append-only trigger refuses the rest).

ALTER TABLE payday.exchanges
    DROP CONSTRAINT exchanges_participant_fkey,
    DROP CONSTRAINT exchanges_payday_id_fkey;

CREATE FUNCTION payday.exchanges_references_exist() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, payday, pg_temp
    AS $$
DECLARE
    nkeys bigint;
    nlocked bigint;
    muser text;
    mpayday bigint;
BEGIN
    IF TG_LEVEL = 'ROW' THEN
        -- An update of one exchange: only the reference it changes is checked and locked, as
        -- a foreign key does (a rename's cascade must not lock the open payday's row).
        IF OLD.participant IS DISTINCT FROM NEW.participant THEN
            PERFORM 1 FROM payday.participants p WHERE p.username = NEW.participant FOR KEY SHARE OF p;
            IF NOT FOUND THEN
                muser := NEW.participant;
            END IF;
        END IF;
        IF muser IS NULL AND NEW.payday_id IS NOT NULL AND OLD.payday_id IS DISTINCT FROM NEW.payday_id THEN
            PERFORM 1 FROM payday.paydays d WHERE d.id = NEW.payday_id FOR KEY SHARE OF d;
            IF NOT FOUND THEN
                mpayday := NEW.payday_id;
            END IF;
        END IF;
    ELSE
        -- Every participant of the statement's rows, locked as a foreign key locks it.
        WITH names AS (SELECT DISTINCT n.participant AS username FROM new_rows n),
             locked AS (SELECT p.username FROM payday.participants p JOIN names USING (username) FOR KEY SHARE OF p)
        SELECT (SELECT count(*) FROM names), (SELECT count(*) FROM locked) INTO nkeys, nlocked;
        IF nlocked <> nkeys THEN
            SELECT n.participant INTO muser FROM new_rows n
             WHERE NOT EXISTS (SELECT 1 FROM payday.participants p WHERE p.username = n.participant)
             LIMIT 1;
            muser := coalesce(muser, '?');  -- it existed, then a concurrent transaction removed or renamed it
        ELSE
            -- Paydays: few, and the payday functions already hold the open one's row lock.
            WITH ids AS (SELECT DISTINCT n.payday_id FROM new_rows n WHERE n.payday_id IS NOT NULL),
                 locked AS (SELECT d.id FROM payday.paydays d JOIN ids ON ids.payday_id = d.id FOR KEY SHARE OF d)
            SELECT (SELECT count(*) FROM ids), (SELECT count(*) FROM locked) INTO nkeys, nlocked;
            IF nlocked <> nkeys THEN
                SELECT n.payday_id INTO mpayday FROM new_rows n
                 WHERE n.payday_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM payday.paydays d WHERE d.id = n.payday_id)
                 LIMIT 1;
                mpayday := coalesce(mpayday, -1);
            END IF;
        END IF;
    END IF;
    IF muser IS NOT NULL THEN
        RAISE EXCEPTION 'insert or update on table "exchanges" violates foreign key constraint "exchanges_participant_fkey"'
            USING ERRCODE = '23503', CONSTRAINT = 'exchanges_participant_fkey',
                  SCHEMA = 'payday', TABLE = 'exchanges', COLUMN = 'participant',
                  DETAIL = format('Key (participant)=(%s) is not present in table "participants".', muser);
    END IF;
    IF mpayday IS NOT NULL THEN
        RAISE EXCEPTION 'insert or update on table "exchanges" violates foreign key constraint "exchanges_payday_id_fkey"'
            USING ERRCODE = '23503', CONSTRAINT = 'exchanges_payday_id_fkey',
                  SCHEMA = 'payday', TABLE = 'exchanges', COLUMN = 'payday_id',
                  DETAIL = format('Key (payday_id)=(%s) is not present in table "paydays".', mpayday);
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION payday.exchanges_references_exist() IS
    'Trigger of payday.exchanges standing in for the foreign keys participant -> participants and payday_id -> '
    'paydays: once per INSERT statement on its transition table, and per row when an UPDATE changes an exchange''s '
    'participant or payday. Locks the referenced rows FOR KEY SHARE. Raises 23503 (constraint '
    'exchanges_participant_fkey / exchanges_payday_id_fkey) for a reference to a row that does not exist. Returns NULL.';

CREATE TRIGGER exchanges_references_insert
    AFTER INSERT ON payday.exchanges
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION payday.exchanges_references_exist();
CREATE TRIGGER exchanges_references_update
    AFTER UPDATE OF participant, payday_id ON payday.exchanges
    FOR EACH ROW WHEN (OLD.participant IS DISTINCT FROM NEW.participant OR OLD.payday_id IS DISTINCT FROM NEW.payday_id)
    EXECUTE FUNCTION payday.exchanges_references_exist();

CREATE FUNCTION payday.participants_rename_exchanges() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, payday, pg_temp
    AS $$
BEGIN
    UPDATE payday.exchanges SET participant = NEW.username WHERE participant = OLD.username;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION payday.participants_rename_exchanges() IS
    'Row trigger of payday.participants (AFTER UPDATE OF username): cascades a rename into payday.exchanges '
    '(participant), as ON UPDATE CASCADE did. Returns NULL. Raises nothing of its own.';
CREATE TRIGGER participants_rename_exchanges
    AFTER UPDATE OF username ON payday.participants
    FOR EACH ROW WHEN (OLD.username IS DISTINCT FROM NEW.username)
    EXECUTE FUNCTION payday.participants_rename_exchanges();

CREATE FUNCTION payday.exchanges_still_referenced() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, payday, pg_temp
    AS $$
DECLARE
    gone text;
BEGIN
    IF TG_TABLE_NAME = 'participants' THEN
        SELECT o.username INTO gone FROM old_rows o
         WHERE EXISTS (SELECT 1 FROM payday.exchanges x WHERE x.participant = o.username)
         LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'update or delete on table "participants" violates foreign key constraint "exchanges_participant_fkey" on table "exchanges"'
                USING ERRCODE = '23503', CONSTRAINT = 'exchanges_participant_fkey', SCHEMA = 'payday', TABLE = 'exchanges',
                      DETAIL = format('Key (username)=(%s) is still referenced from table "exchanges".', gone);
        END IF;
    ELSE
        SELECT o.id::text INTO gone FROM old_rows o
         WHERE EXISTS (SELECT 1 FROM payday.exchanges x WHERE x.payday_id = o.id)
         LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'update or delete on table "paydays" violates foreign key constraint "exchanges_payday_id_fkey" on table "exchanges"'
                USING ERRCODE = '23503', CONSTRAINT = 'exchanges_payday_id_fkey', SCHEMA = 'payday', TABLE = 'exchanges',
                      DETAIL = format('Key (id)=(%s) is still referenced from table "exchanges".', gone);
        END IF;
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION payday.exchanges_still_referenced() IS
    'Statement trigger of payday.participants and payday.paydays (AFTER DELETE): refuses, with 23503 and the name of '
    'the foreign key it stands for, to delete a participant or a payday that payday.exchanges still references. '
    'Returns NULL.';
CREATE TRIGGER participants_exchanges_referenced
    AFTER DELETE ON payday.participants
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION payday.exchanges_still_referenced();
CREATE TRIGGER paydays_exchanges_referenced
    AFTER DELETE ON payday.paydays
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION payday.exchanges_still_referenced();

-- TRUNCATE skips the delete triggers: the foreign key of exchanges made TRUNCATE ... CASCADE
-- of participants reach exchanges, whose own guard refused it. Without it, participants
-- refuse TRUNCATE themselves.
CREATE FUNCTION payday.participants_no_truncate() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, payday, pg_temp
    AS $$
BEGIN
    RAISE EXCEPTION 'payday.participants: TRUNCATE refused: the ledger (payday.exchanges, payday.transfers) names them'
        USING ERRCODE = 'PD005',
              HINT = 'Ledger rows are never removed, nor the participants they name; DELETE refuses a participant still named.';
END
$$;
COMMENT ON FUNCTION payday.participants_no_truncate() IS
    'Statement trigger of payday.participants (BEFORE TRUNCATE): raises PD005. TRUNCATE would skip the checks that '
    'keep every participant the ledger names (payday.exchanges_still_referenced(), payday.transfers_still_referenced()).';
CREATE TRIGGER participants_no_truncate
    BEFORE TRUNCATE ON payday.participants
    FOR EACH STATEMENT EXECUTE FUNCTION payday.participants_no_truncate();

REVOKE ALL ON FUNCTION payday.exchanges_references_exist(), payday.participants_rename_exchanges(),
    payday.exchanges_still_referenced(), payday.participants_no_truncate() FROM PUBLIC;
