CREATE OR REPLACE FUNCTION payday.record_outcomes(
    exchange_ids bigint[],
    succeeded boolean[],
    errors text[] DEFAULT NULL,
    processor_refs text[] DEFAULT NULL
) RETURNS bigint
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, payday, pg_temp
    AS $$
DECLARE
    n integer;
    locked bigint;
    bad record;
    applied bigint;
    errs text[];
    refs text[];
BEGIN
    IF exchange_ids IS NULL OR succeeded IS NULL THEN
        RAISE EXCEPTION 'exchange_ids and succeeded must not be NULL' USING ERRCODE = '22004';
    END IF;
    n := cardinality(exchange_ids);
    IF cardinality(succeeded) <> n
       OR (errors IS NOT NULL AND cardinality(errors) <> n)
       OR (processor_refs IS NOT NULL AND cardinality(processor_refs) <> n) THEN
        RAISE EXCEPTION 'exchange_ids, succeeded, errors and processor_refs must have the same length (% ids)', n
            USING ERRCODE = '22023';
    END IF;
    IF n = 0 THEN
        RETURN 0;
    END IF;

    errs := coalesce(errors, array_fill(NULL::text, ARRAY[n]));
    refs := coalesce(processor_refs, array_fill(NULL::text, ARRAY[n]));

    SELECT * INTO bad FROM unnest(exchange_ids, succeeded, errs, refs) AS i(id, ok, err, ref) WHERE id IS NULL OR ok IS NULL LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'exchange ids and outcomes must not be NULL' USING ERRCODE = '22004';
    END IF;
    SELECT * INTO bad FROM unnest(exchange_ids, succeeded, errs, refs) AS i(id, ok, err, ref) WHERE NOT ok AND nullif(btrim(err), '') IS NULL LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'exchange %: a failed outcome needs its error text', bad.id
            USING ERRCODE = '22023', HINT = 'Pass the processor''s error message, e.g. ''card declined''.';
    END IF;
    SELECT * INTO bad FROM unnest(exchange_ids, succeeded, errs, refs) AS i(id, ok, err, ref) WHERE ok AND nullif(btrim(err), '') IS NOT NULL LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'exchange %: a successful outcome takes no error text', bad.id USING ERRCODE = '22023';
    END IF;
    SELECT i.id INTO bad FROM unnest(exchange_ids, succeeded, errs, refs) AS i(id, ok, err, ref) GROUP BY i.id HAVING count(*) > 1 LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'exchange % appears more than once in one call', bad.id USING ERRCODE = '22023';
    END IF;

    -- Every statement below is planned from payday.exchanges' statistics. They can count
    -- fewer exchanges than this batch names, i.e. say the table is nearly empty while it
    -- holds the payday's: before autovacuum has seen charge_intents()' insert, or after a
    -- batch of intents was rolled back and vacuumed away (pages kept, not one row on them).
    -- Planned from that, the update of the batch's exchanges read the whole primary key on
    -- each call, and so did the lock and the unknown-id check below (~600 ms a call of 1,000
    -- outcomes among 225,000 exchanges at 1M: bench/README.md, tenth round). Such
    -- statistics are refreshed first: in practice at the payday's first batch, and ANALYZE
    -- samples a fixed number of rows (0.14 s at 1M). It does not wait for a lock: while
    -- someone else vacuums or analyzes the table, this batch is planned from the statistics
    -- as they are (slower, never wrong).
    IF (SELECT c.reltuples FROM pg_class c WHERE c.oid = 'payday.exchanges'::regclass) < n THEN
        ANALYZE (SKIP_LOCKED) payday.exchanges;
    END IF;
    -- And wherever the batch meets its exchanges, each is looked up by its id (a lateral
    -- subquery kept apart with OFFSET 0: one primary-key probe per id) whatever the
    -- statistics say. Lock order everywhere: payday row, then exchanges (here by id), then
    -- participants.
    PERFORM 1 FROM payday.paydays
     WHERE id IN (SELECT e.payday_id FROM unnest(exchange_ids) AS i(id)
                   CROSS JOIN LATERAL (SELECT x.payday_id FROM payday.exchanges x WHERE x.id = i.id OFFSET 0) e)
     ORDER BY id FOR UPDATE;
    PERFORM 1 FROM (SELECT i.id FROM unnest(exchange_ids) AS i(id) ORDER BY i.id) i
     CROSS JOIN LATERAL (SELECT x.id FROM payday.exchanges x WHERE x.id = i.id OFFSET 0 FOR UPDATE) e;
    GET DIAGNOSTICS locked = ROW_COUNT;

    IF locked < n THEN
        SELECT i.id INTO bad FROM unnest(exchange_ids) AS i(id)
          LEFT JOIN LATERAL (SELECT x.id FROM payday.exchanges x WHERE x.id = i.id OFFSET 0) e ON true
         WHERE e.id IS NULL LIMIT 1;
        RAISE EXCEPTION 'unknown exchange id %', bad.id
            USING ERRCODE = 'P0002', HINT = 'SELECT * FROM payday.pending_exchanges(); lists the exchanges awaiting an outcome.';
    END IF;
    SELECT e.id, e.status INTO bad FROM unnest(exchange_ids, succeeded, errs, refs) AS i(id, ok, err, ref)
     CROSS JOIN LATERAL (SELECT x.id, x.status FROM payday.exchanges x WHERE x.id = i.id OFFSET 0) e
     WHERE e.status <> 'pre' AND (e.status = 'succeeded') <> i.ok LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'exchange % is already recorded as %; refusing to record the opposite', bad.id, bad.status
            USING ERRCODE = 'PD002',
                  HINT = 'An outcome is final. Check the processor''s records; a correction is a new exchange.';
    END IF;

    -- Apply each outcome exactly once: only exchanges still pre move money or counters.
    WITH todo AS MATERIALIZED (
        SELECT e.id, e.participant, e.kind, e.amount, e.fee, e.payday_id, i.ok, nullif(btrim(i.err), '') AS err, nullif(btrim(i.ref), '') AS ref
          FROM unnest(exchange_ids, succeeded, errs, refs) AS i(id, ok, err, ref)
         CROSS JOIN LATERAL (SELECT * FROM payday.exchanges x WHERE x.id = i.id OFFSET 0) e
         WHERE e.status = 'pre'
    ), marked AS (
        UPDATE payday.exchanges e
           SET status = CASE WHEN t.ok THEN 'succeeded' ELSE 'failed' END,
               error = t.err,
               processor_ref = coalesce(t.ref, e.processor_ref),
               recorded_at = clock_timestamp()
          FROM todo t
         WHERE e.id = t.id
        RETURNING e.id
    ), people AS (
        UPDATE payday.participants p
           SET balance = p.balance + d.delta,
               last_bill_result = coalesce(d.bill, p.last_bill_result),
               last_ach_result = coalesce(d.ach, p.last_ach_result)
          FROM (SELECT participant,
                       coalesce(sum(CASE WHEN kind = 'charge' THEN amount ELSE amount - fee END)
                                FILTER (WHERE ok), 0) AS delta,
                       max(CASE WHEN ok THEN '' ELSE err END) FILTER (WHERE kind = 'charge') AS bill,
                       max(CASE WHEN ok THEN '' ELSE err END) FILTER (WHERE kind = 'credit') AS ach
                  FROM todo GROUP BY participant) d
         WHERE p.username = d.participant
        RETURNING 1
    ), counters AS (
        UPDATE payday.paydays pd
           SET ncharges = pd.ncharges + c.ncharges,
               charge_volume = pd.charge_volume + c.charge_volume,
               charge_fees_volume = pd.charge_fees_volume + c.charge_fees,
               ncc_failing = pd.ncc_failing + c.ncc_failing,
               nachs = pd.nachs + c.nachs,
               ach_volume = pd.ach_volume + c.ach_volume,
               ach_fees_volume = pd.ach_fees_volume + c.ach_fees,
               nach_failing = pd.nach_failing + c.nach_failing
          FROM (SELECT payday_id,
                       count(*) FILTER (WHERE kind = 'charge' AND ok) AS ncharges,
                       coalesce(sum(amount + fee) FILTER (WHERE kind = 'charge' AND ok), 0) AS charge_volume,
                       coalesce(sum(fee) FILTER (WHERE kind = 'charge' AND ok), 0) AS charge_fees,
                       count(*) FILTER (WHERE kind = 'charge' AND NOT ok) AS ncc_failing,
                       count(*) FILTER (WHERE kind = 'credit' AND ok) AS nachs,
                       coalesce(sum(amount) FILTER (WHERE kind = 'credit' AND ok), 0) AS ach_volume,
                       coalesce(sum(fee) FILTER (WHERE kind = 'credit' AND ok), 0) AS ach_fees,
                       count(*) FILTER (WHERE kind = 'credit' AND NOT ok) AS nach_failing
                  FROM todo GROUP BY payday_id) c
         WHERE pd.id = c.payday_id
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM marked) + 0 * (SELECT count(*) FROM people) + 0 * (SELECT count(*) FROM counters)
      INTO applied;
    RETURN applied;
END
$$;

COMMENT ON FUNCTION payday.record_outcomes(bigint[], boolean[], text[], text[]) IS
    'Records processor outcomes for pre exchanges (charges or credits), one array element per exchange, in one '
    'statement. A succeeded charge adds its amount to the balance (last_bill_result = '''', ncharges, charge_volume '
    '+= amount + fee, charge_fees_volume); a failed one sets last_bill_result and ncc_failing. A succeeded credit '
    'takes amount - fee off the balance (last_ach_result = '''', nachs, ach_volume += amount, ach_fees_volume); a '
    'failed one sets last_ach_result and nach_failing and leaves the balance alone. Recording an outcome already '
    'recorded is a no-op. When the statistics of payday.exchanges count fewer rows than the batch names, it '
    'refreshes them first (ANALYZE, skipped if the table is locked). Returns how many outcomes were newly applied. '
    'Raises 22004 for NULL arrays or elements, '
    '22023 for unequal lengths, a failure without error text, a success with one, or a repeated id; P0002 for an '
    'unknown id; PD002 when an outcome contradicts the recorded one (nothing is applied then).';
