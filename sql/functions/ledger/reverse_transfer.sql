CREATE OR REPLACE FUNCTION payday.reverse_transfer(transfer_id bigint, reason text)
RETURNS bigint
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, payday, pg_temp
    AS $$
DECLARE
    t payday.transfers;
    earlier bigint;
    rid bigint;
BEGIN
    IF transfer_id IS NULL OR reason IS NULL THEN
        RAISE EXCEPTION 'transfer_id and reason must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF btrim(reason) = '' THEN
        RAISE EXCEPTION 'a reversal needs a reason' USING ERRCODE = '22023',
            HINT = 'Say why, e.g. ''tip to a participant found fraudulent''; it is kept in payday.reversals.';
    END IF;

    -- One reversal per transfer: concurrent callers queue on the original's row lock.
    SELECT * INTO t FROM payday.transfers x WHERE x.id = reverse_transfer.transfer_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown transfer id %', transfer_id USING ERRCODE = 'P0002';
    END IF;
    SELECT r.reversal_id INTO earlier FROM payday.reversals r WHERE r.transfer_id = t.id;
    IF FOUND THEN
        RAISE EXCEPTION 'transfer % was already reversed by transfer %', t.id, earlier
            USING ERRCODE = '55000', HINT = 'A transfer is reversed at most once; a further correction is a new transfer.';
    END IF;

    -- The money goes back the way payday.transfer() moves money: from the original
    -- tippee's balance (refused with PD001 when it does not cover the amount) to the
    -- original tipper (pending during phases payin and clear, else balance).
    rid := payday.transfer(t.tippee, t.tipper, t.amount);
    INSERT INTO payday.reversals (transfer_id, reversal_id, reason) VALUES (t.id, rid, btrim(reason));
    RETURN rid;
END
$$;

COMMENT ON FUNCTION payday.reverse_transfer(bigint, text) IS
    'Corrects the append-only ledger: moves the amount of transfer `transfer_id` back from its tippee to its tipper '
    'as a new transfer (context manual, made by payday.transfer, so counted in the open payday if any and never '
    'overdrawing), and records the pair and `reason` in payday.reversals. Returns the new transfer''s id. Raises '
    '22004 for NULL, 22023 for a blank reason, P0002 for an unknown transfer, 55000 when it was already reversed, '
    'PD001 when the tippee''s available balance does not cover the amount.';
