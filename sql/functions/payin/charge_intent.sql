CREATE OR REPLACE FUNCTION payday.charge_intent(username text, processor text DEFAULT NULL)
RETURNS bigint
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, payday, pg_temp
    AS $$
DECLARE
    pd payday.paydays := payday.require_open_payday(true, 'payin');
    proc text := payday.require_processor(processor);
    p payday.participants := payday.require_participant(username, 'participant', true);
    x payday.exchanges;
    due payday.due_charges;
BEGIN
    SELECT * INTO x FROM payday.exchanges e
     WHERE e.payday_id = pd.id AND e.participant = p.username AND e.kind = 'charge';
    IF FOUND THEN
        IF x.status = 'pre' THEN
            RETURN x.id;  -- the intent already exists: same exchange, same idempotency key
        END IF;
        RAISE EXCEPTION '% was already charged in payday % (exchange %, %)', p.username, pd.id, x.id, x.status
            USING ERRCODE = 'PD003', HINT = 'A participant is charged at most once per payday.';
    END IF;

    SELECT * INTO due FROM payday.due_charges d WHERE d.username = p.username;
    IF NOT FOUND THEN
        RAISE EXCEPTION '% is not due a charge in payday %: %', p.username, pd.id,
            CASE WHEN p.claimed_time IS NULL OR p.claimed_time >= pd.ts_start THEN 'not claimed before the payday started'
                 WHEN p.is_suspicious THEN 'suspicious participants are excluded from payday'
                 WHEN p.is_suspicious IS NULL THEN 'not reviewed yet (only whitelisted participants are charged)'
                 WHEN coalesce(p.balanced_account_uri, p.stripe_customer_id) IS NULL THEN 'no funding source'
                 ELSE 'balance covers what is owed' END
            USING ERRCODE = 'PD003', HINT = 'SELECT * FROM payday.charges_due(); lists who is due.';
    END IF;

    INSERT INTO payday.exchanges (participant, amount, fee, processor, route, payday_id)
    VALUES (p.username, due.amount, due.fee, coalesce(proc, due.processor), due.route, pd.id)
    RETURNING * INTO x;
    RETURN x.id;
END
$$;

COMMENT ON FUNCTION payday.charge_intent(text, text) IS
    'Records the intent to charge `username` in the open payday: a pre exchange with the amount and fee of '
    'payday.charges_due(), BEFORE any processor call. Returns the exchange id; its idempotency_key '
    '(payday-<payday>-exchange-<id>) goes to the processor. processor NULL means the participant''s own; '
    'sandbox or manual override it. Calling it again while the charge is pre returns the same id. '
    'Raises 55000 outside phase payin, P0002 for an unknown username, 22004 for NULL, 22023 for an unknown '
    'processor, PD003 when the participant is not due a charge (the message says why).';
