CREATE OR REPLACE FUNCTION payday.transfer(tipper text, tippee text, amount numeric)
RETURNS bigint
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, payday, pg_temp
    AS $$
DECLARE
    amt numeric(35,2) := payday.require_amount(amount, 'amount');
    pd payday.paydays;
    src payday.participants;
    reserved numeric(35,2);
    to_pending boolean;
    tid bigint;
BEGIN
    IF tipper IS NULL OR tippee IS NULL THEN
        RAISE EXCEPTION 'tipper and tippee must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF tipper = tippee THEN
        RAISE EXCEPTION 'cannot transfer from % to themselves', tipper USING ERRCODE = '23514';
    END IF;
    PERFORM payday.require_participant(tipper, 'tipper');
    PERFORM payday.require_participant(tippee, 'tippee');

    -- Lock order everywhere: payday row, then participants (by username).
    SELECT * INTO pd FROM payday.paydays WHERE ts_end = payday.open_sentinel() FOR UPDATE;
    PERFORM 1 FROM payday.participants p
     WHERE p.username IN (transfer.tipper, transfer.tippee) ORDER BY p.username FOR UPDATE;
    SELECT * INTO src FROM payday.participants p WHERE p.username = transfer.tipper;

    -- Money promised to an in-flight payout is not available.
    SELECT coalesce(sum(x.fee - x.amount), 0) INTO reserved
      FROM payday.exchanges x
     WHERE x.participant = transfer.tipper AND x.kind = 'credit' AND x.status = 'pre';
    IF src.balance - reserved < amt THEN
        RAISE EXCEPTION '% has % available (balance %, % reserved for a payout in flight); cannot transfer %',
                        tipper, src.balance - reserved, src.balance, reserved, amt
            USING ERRCODE = 'PD001';
    END IF;

    -- During a payday, received money waits in pending until it clears, as tips do.
    to_pending := pd.id IS NOT NULL AND pd.phase IN ('payin', 'clear');
    UPDATE payday.participants p
       SET balance = p.balance - amt
     WHERE p.username = transfer.tipper;
    UPDATE payday.participants p
       SET balance = CASE WHEN to_pending THEN p.balance ELSE p.balance + amt END,
           pending = CASE WHEN to_pending THEN coalesce(p.pending, 0) + amt ELSE p.pending END
     WHERE p.username = transfer.tippee;

    INSERT INTO payday.transfers (tipper, tippee, amount, payday_id, context)
    VALUES (transfer.tipper, transfer.tippee, amt, pd.id, 'manual')
    RETURNING id INTO tid;

    IF pd.id IS NOT NULL THEN
        UPDATE payday.paydays
           SET ntransfers = ntransfers + 1, transfer_volume = transfer_volume + amt
         WHERE id = pd.id;
    END IF;
    RETURN tid;
END
$$;

COMMENT ON FUNCTION payday.transfer(text, text, numeric) IS
    'Manual transfer for DBAs: moves `amount` from tipper''s balance to tippee, recorded in transfers (context manual). '
    'During a payday in phase payin or clear the tippee''s pending receives it (it clears with the tips); in phase '
    'payout, or outside a payday, the tippee''s balance does. Within a payday it counts in ntransfers and '
    'transfer_volume. Returns the transfer id. Raises 22004 for NULL, 22023/22003 for a bad amount, 23514 for a '
    'self-transfer, P0002 for an unknown username, PD001 when the tipper''s balance (less any payout in flight) '
    'does not cover it.';
