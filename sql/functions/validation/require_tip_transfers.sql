CREATE OR REPLACE FUNCTION payday.require_tip_transfers(payday_id bigint, attached boolean, caller text)
RETURNS regclass
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, payday, pg_temp
    AS $$
DECLARE
    name text;
    part regclass;
BEGIN
    IF payday_id IS NULL OR payday_id < 1 THEN
        RAISE EXCEPTION '%: payday_id must be a payday id (at least 1), not %', caller, coalesce(payday_id::text, 'NULL')
            USING ERRCODE = CASE WHEN payday_id IS NULL THEN '22004' ELSE '22023' END;
    END IF;
    name := format('transfers_payday_%s', payday_id);
    part := to_regclass(format('payday.%I', name));
    IF part IS NULL THEN
        RAISE EXCEPTION '%: there is no table payday.% (payday % has not paid its tips)', caller, name, payday_id
            USING ERRCODE = '42P01', HINT = 'payday.pay_tips() creates and fills it.';
    END IF;
    IF attached AND NOT EXISTS (SELECT 1 FROM pg_inherits i
                                 WHERE i.inhrelid = part AND i.inhparent = 'payday.transfers'::regclass) THEN
        RAISE EXCEPTION '%: payday.% is not a partition of payday.transfers', caller, name
            USING ERRCODE = '55000',
                  HINT = 'payday.pay_tips() attaches it (payday.attach_tip_transfers()); a DBA must look at a table left detached.';
    END IF;
    IF NOT attached AND EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = part) THEN
        RAISE EXCEPTION '%: payday.% is already a partition of payday.transfers', caller, name
            USING ERRCODE = '55000', HINT = 'Nothing to do: its transfers are in the ledger.';
    END IF;
    RETURN part;
END
$$;

COMMENT ON FUNCTION payday.require_tip_transfers(bigint, boolean, text) IS
    'Returns payday.transfers_payday_<payday_id>, the table of a payday''s tip transfers, for payday.attach_tip_transfers() '
    '(attached false: not yet a partition of anything) and payday.index_tip_transfers() (attached true: a partition of '
    'payday.transfers; NULL: either). Errors name `caller`. Raises '
    '22004 for a NULL payday_id, 22023 for one below 1, 42P01 when the table does not exist, 55000 when it is (not) '
    'attached to payday.transfers against `attached`.';
