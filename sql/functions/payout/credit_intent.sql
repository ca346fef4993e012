CREATE OR REPLACE FUNCTION payday.credit_intent(username text, processor text DEFAULT NULL)
RETURNS bigint
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, payday, pg_temp
    AS $$
DECLARE
    pd payday.paydays := payday.require_open_payday(true, 'payout');
    proc text := payday.require_processor(processor);
    p payday.participants := payday.require_participant(username, 'participant', true);
    x payday.exchanges;
    due payday.due_credits;
BEGIN
    SELECT * INTO x FROM payday.exchanges e
     WHERE e.payday_id = pd.id AND e.participant = p.username AND e.kind = 'credit';
    IF FOUND THEN
        IF x.status = 'pre' THEN
            RETURN x.id;
        END IF;
        RAISE EXCEPTION '% was already paid out in payday % (exchange %, %)', p.username, pd.id, x.id, x.status
            USING ERRCODE = 'PD003', HINT = 'A participant is paid out at most once per payday.';
    END IF;

    SELECT * INTO due FROM payday.due_credits d WHERE d.username = p.username;
    IF NOT FOUND THEN
        RAISE EXCEPTION '% is not due a payout in payday %: %', p.username, pd.id,
            CASE WHEN p.claimed_time IS NULL OR p.claimed_time >= pd.ts_start THEN 'not claimed before the payday started'
                 WHEN p.is_suspicious THEN 'suspicious participants are excluded from payday'
                 WHEN p.is_suspicious IS NULL THEN 'not reviewed yet (only whitelisted participants are paid out)'
                 WHEN p.balanced_account_uri IS NULL THEN 'no balanced_account_uri'
                 ELSE 'balance minus obligations is below the 10.00 minimum' END
            USING ERRCODE = 'PD003', HINT = 'SELECT * FROM payday.credits_due(); lists who is due.';
    END IF;

    INSERT INTO payday.exchanges (participant, amount, fee, processor, route, payday_id)
    VALUES (p.username, -due.credit_amount, due.fee, coalesce(proc, 'balanced'), due.route, pd.id)
    RETURNING * INTO x;
    RETURN x.id;
END
$$;

COMMENT ON FUNCTION payday.credit_intent(text, text) IS
    'Records the intent to pay `username` out in the open payday: a pre exchange of -credit_amount with the 0.30 fee '
    '(payday.credits_due), BEFORE the processor call. Returns the exchange id; calling again while it is pre returns '
    'the same id. processor NULL means balanced; sandbox or manual override it. Raises 55000 outside phase payout, '
    'P0002 for an unknown username, 22004 for NULL, 22023 for an unknown processor, PD003 when not due a payout '
    '(the message says why).';
