CREATE OR REPLACE FUNCTION payday.credit_intents(usernames text[], processor text DEFAULT NULL)
RETURNS SETOF payday.exchanges
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, payday, pg_temp
    AS $$
DECLARE
    pd payday.paydays := payday.require_open_payday(true, 'payout');
    proc text := payday.require_processor(processor);
    bad text[];
BEGIN
    IF usernames IS NULL OR array_position(usernames, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'usernames must be an array of usernames, without NULL'
            USING ERRCODE = '22004', HINT = 'Pass the usernames listed by payday.credits_due().';
    END IF;

    SELECT array_agg(quote_literal(u.name) ORDER BY u.name) INTO bad
      FROM unnest(usernames) AS u(name)
     WHERE NOT EXISTS (SELECT 1 FROM payday.participants p WHERE p.username = u.name);
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'no participant named %', array_to_string(bad, ', ')
            USING ERRCODE = 'P0002', HINT = 'Usernames are case-sensitive; SELECT * FROM payday.credits_due(); lists who is due.';
    END IF;

    -- Each name is looked up on its own (a lateral subquery kept apart with OFFSET 0: an
    -- index probe per name), whatever the statistics say: mid-payout they still count the
    -- credits of this payday as a handful, and a join planned from that compared every
    -- credit with every name of the batch (quadratic over a payout: seconds a batch at 1M).
    SELECT array_agg(x.participant || ' (exchange ' || x.id || ', ' || x.status || ')' ORDER BY x.id) INTO bad
      FROM (SELECT DISTINCT u.name FROM unnest(usernames) AS u(name)) u
     CROSS JOIN LATERAL (SELECT * FROM payday.exchanges e
                          WHERE e.payday_id = pd.id AND e.participant = u.name AND e.kind = 'credit' OFFSET 0) x
     WHERE x.status <> 'pre';
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'already paid out in payday %: %', pd.id, array_to_string(bad, ', ')
            USING ERRCODE = 'PD003', HINT = 'A participant is paid out at most once per payday.';
    END IF;

    -- One statement for the whole batch. The lateral subquery is kept apart (OFFSET 0) so
    -- each username is looked up in payday.due_credits by index, as a single call would,
    -- instead of the view being computed for everyone. The statement's snapshot does not
    -- see its own inserts: the second branch returns only the pre credits from before.
    RETURN QUERY
        WITH wanted AS (
            SELECT u.name, min(u.n) AS n FROM unnest(usernames) WITH ORDINALITY AS u(name, n) GROUP BY u.name
        ), added AS (
            INSERT INTO payday.exchanges (participant, amount, fee, processor, route, payday_id)
            SELECT d.username, -d.credit_amount, d.fee, coalesce(proc, 'balanced'), d.route, pd.id
              FROM wanted w
             CROSS JOIN LATERAL (SELECT * FROM payday.due_credits c WHERE c.username = w.name OFFSET 0) d
             ORDER BY w.n
            RETURNING *
        )
        SELECT a.* FROM added a
        UNION ALL
        SELECT x.* FROM (SELECT DISTINCT u.name FROM unnest(usernames) AS u(name)) u
         CROSS JOIN LATERAL (SELECT * FROM payday.exchanges e
                              WHERE e.payday_id = pd.id AND e.participant = u.name AND e.kind = 'credit' OFFSET 0) x
         WHERE x.status = 'pre'
        ORDER BY id;
END
$$;

COMMENT ON FUNCTION payday.credit_intents(text[], text) IS
    'Set-based payday.credit_intent: in one statement, records a pre credit (amount -credit_amount, fee 0.30, '
    'from payday.credits_due) for each of `usernames` that is due a payout, BEFORE the processor calls, and returns '
    'the pre credits of those usernames (new ones, and ones already pre from an earlier call), by id. A username '
    'no longer due (its obligations grew since it was listed) is left out: compare the result with the input. '
    'processor NULL means balanced; sandbox or manual override it. Raises 55000 outside phase payout, 22004 for a NULL '
    'array or element, P0002 for unknown usernames, 22023 for an unknown processor, PD003 when one was already paid '
    'out in this payday.';
