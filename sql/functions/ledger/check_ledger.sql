CREATE OR REPLACE FUNCTION payday.check()
RETURNS TABLE (what text, who text, expected text, actual text)
    LANGUAGE plpgsql STABLE
    SECURITY DEFINER
    SET search_path = pg_catalog, payday, pg_temp
    -- The ledger check aggregates every transfer and exchange, right after a payday added
    -- millions that the statistics have not seen yet: memory, and hash joins whatever the
    -- estimates say (bench/README.md).
    SET work_mem = '256MB'
    SET jit = off  -- compiling costs more than it saves below ~1M tips
    SET enable_nestloop = off
    AS $$
DECLARE
    pd payday.paydays := payday.open_payday();
    reversed bigint[] := '{}';
    suspicious text[];
BEGIN
    -- At most one open payday.
    RETURN QUERY
        SELECT 'open paydays', 'paydays', 'at most 1', count(*)::text
          FROM payday.paydays WHERE ts_end = payday.open_sentinel()
        HAVING count(*) > 1;

    -- No balance below zero.
    RETURN QUERY
        SELECT 'negative balance', p.username, '>= 0', p.balance::text
          FROM payday.participants p WHERE p.balance < 0 OR p.pending < 0;

    -- Pending is NULL outside a payday (and once a payday has cleared it).
    RETURN QUERY
        SELECT 'pending outside payday', p.username, 'NULL', p.pending::text
          FROM payday.participants p
         WHERE p.pending IS NOT NULL AND (pd.id IS NULL OR pd.phase NOT IN ('payin', 'clear'));

    -- Every balance (plus pending, during a payday) equals its ledger.
    RETURN QUERY
        WITH moves AS (
            SELECT x.participant AS username,
                   CASE WHEN x.kind = 'charge' THEN x.amount ELSE x.amount - x.fee END AS delta
              FROM payday.exchanges x WHERE x.status = 'succeeded'
            UNION ALL
            SELECT t.tippee, t.amount FROM payday.transfers t
            UNION ALL
            SELECT t.tipper, -t.amount FROM payday.transfers t
        ), ledger AS (
            SELECT m.username, sum(m.delta) AS delta FROM moves m GROUP BY m.username
        )
        -- A ledger name that is no participant is money nobody holds (a transfer or an
        -- exchange written for a name that was gone): reported on its own.
        SELECT CASE WHEN p.username IS NULL THEN 'ledger entries of no participant'
                    ELSE 'balance differs from ledger' END,
               coalesce(p.username, l.username),
               CASE WHEN p.username IS NULL THEN 'a participant'
                    ELSE (p.opening_balance + coalesce(l.delta, 0))::text END,
               CASE WHEN p.username IS NULL THEN format('no participant; the ledger moves %s', l.delta)
                    ELSE (p.balance + coalesce(p.pending, 0))::text END
          FROM payday.participants p
          FULL JOIN ledger l ON l.username = p.username
         WHERE p.username IS NULL
            OR p.balance + coalesce(p.pending, 0) <> p.opening_balance + coalesce(l.delta, 0);

    -- Each payday's counters equal what its transfers and exchanges say.
    RETURN QUERY
        WITH per_tipper AS (
            -- Hashed by (payday, tipper) first: ntippers is then a plain count, with no
            -- count(DISTINCT) sorting the payday's transfers.
            SELECT t.payday_id, t.tipper,
                   count(*) AS ntransfers, sum(t.amount) AS transfer_volume,
                   count(*) FILTER (WHERE t.context = 'tip') AS ntips
              FROM payday.transfers t WHERE t.payday_id IS NOT NULL GROUP BY t.payday_id, t.tipper
        ), t AS (
            SELECT p.payday_id,
                   sum(p.ntransfers) AS ntransfers, sum(p.transfer_volume) AS transfer_volume,
                   sum(p.ntips) AS ntips, count(*) FILTER (WHERE p.ntips > 0) AS ntippers
              FROM per_tipper p GROUP BY p.payday_id
        ), x AS (
            SELECT x.payday_id,
                   count(*) FILTER (WHERE x.kind = 'charge' AND x.status = 'succeeded') AS ncharges,
                   sum(x.amount + x.fee) FILTER (WHERE x.kind = 'charge' AND x.status = 'succeeded') AS charge_volume,
                   sum(x.fee) FILTER (WHERE x.kind = 'charge' AND x.status = 'succeeded') AS charge_fees_volume,
                   count(*) FILTER (WHERE x.kind = 'charge' AND x.status = 'failed') AS ncc_failing,
                   count(*) FILTER (WHERE x.kind = 'credit' AND x.status = 'succeeded') AS nachs,
                   sum(x.amount) FILTER (WHERE x.kind = 'credit' AND x.status = 'succeeded') AS ach_volume,
                   sum(x.fee) FILTER (WHERE x.kind = 'credit' AND x.status = 'succeeded') AS ach_fees_volume,
                   count(*) FILTER (WHERE x.kind = 'credit' AND x.status = 'failed') AS nach_failing
              FROM payday.exchanges x GROUP BY x.payday_id
        ), derived AS (
            SELECT d.id,
                   ARRAY['ntransfers', 'transfer_volume', 'ntips', 'ntippers', 'ncharges', 'charge_volume',
                         'charge_fees_volume', 'ncc_failing', 'nachs', 'ach_volume', 'ach_fees_volume',
                         'nach_failing'] AS names,
                   ARRAY[coalesce(t.ntransfers, 0), coalesce(t.transfer_volume, 0), coalesce(t.ntips, 0),
                         coalesce(t.ntippers, 0), coalesce(x.ncharges, 0), coalesce(x.charge_volume, 0),
                         coalesce(x.charge_fees_volume, 0), coalesce(x.ncc_failing, 0), coalesce(x.nachs, 0),
                         coalesce(x.ach_volume, 0), coalesce(x.ach_fees_volume, 0),
                         coalesce(x.nach_failing, 0)]::numeric[] AS expected,
                   ARRAY[d.ntransfers, d.transfer_volume, d.ntips, d.ntippers, d.ncharges, d.charge_volume,
                         d.charge_fees_volume, d.ncc_failing, d.nachs, d.ach_volume, d.ach_fees_volume,
                         d.nach_failing]::numeric[] AS actual
              FROM payday.paydays d
              LEFT JOIN t ON t.payday_id = d.id
              LEFT JOIN x ON x.payday_id = d.id
        )
        SELECT 'payday counter ' || c.name, 'payday ' || d.id, c.expected::text, c.actual::text
          FROM derived d
          CROSS JOIN LATERAL unnest(d.names, d.expected, d.actual) AS c(name, expected, actual)
         WHERE c.expected <> c.actual;

    -- Tips are never paid to or from a suspicious participant (SPEC 4.4): the open payday's
    -- tip transfers involving someone suspicious now, unless reversed (payday.reverse_transfer).
    -- Closed paydays are history: a participant flagged later does not reopen them.
    IF pd.id IS NOT NULL THEN
        IF to_regclass('payday.reversals') IS NOT NULL THEN  -- absent below migration 0002
            EXECUTE 'SELECT coalesce(array_agg(transfer_id), ''{}'') FROM payday.reversals' INTO reversed;
        END IF;
        -- Driven from the (few) suspicious participants: their transfers are looked up by
        -- the tipper and tippee indexes, not found by reading the whole payday.
        suspicious := ARRAY(SELECT p.username FROM payday.participants p WHERE p.is_suspicious);
        RETURN QUERY
            SELECT 'tip involving a suspicious participant', t.tipper || ' -> ' || t.tippee,
                   'no tip transfer', format('transfer %s of %s in payday %s', t.id, t.amount, t.payday_id)
              FROM payday.transfers t
             WHERE (t.tipper = ANY (suspicious) OR t.tippee = ANY (suspicious))
               AND t.payday_id = pd.id AND t.context = 'tip'
               AND t.id <> ALL (reversed);
    END IF;

    -- An exchange moves money only once it has an outcome: recorded_at is set iff it is not pre.
    RETURN QUERY
        SELECT 'exchange outcome not recorded consistently', x.participant,
               CASE WHEN x.status = 'pre' THEN 'recorded_at NULL' ELSE 'recorded_at set' END,
               format('exchange %s: status %s, recorded_at %s', x.id, x.status, coalesce(x.recorded_at::text, 'NULL'))
          FROM payday.exchanges x
         WHERE (x.status = 'pre') <> (x.recorded_at IS NULL);

    -- No pre exchange outlives its payday: every pre exchange belongs to the open payday.
    RETURN QUERY
        SELECT 'pre exchange outside the open payday', x.participant,
               CASE WHEN pd.id IS NULL THEN 'no pre exchange (no payday open)'
                    ELSE format('pre only in the open payday %s', pd.id) END,
               format('exchange %s of payday %s is pre', x.id, x.payday_id)
          FROM payday.exchanges x
         WHERE x.status = 'pre' AND x.payday_id IS DISTINCT FROM pd.id;
END
$$;

COMMENT ON FUNCTION payday.check()
    IS 'Checks the invariants of SPEC 6 and returns one row per violation (what, who, expected, actual); no row '
       'when all hold: at most one open payday; no negative balance or pending; pending NULL outside a payday; '
       'every balance (+ pending) equals opening_balance + succeeded charges - succeeded payouts and their fees '
       '+ transfers in - transfers out, and every name in transfers and succeeded exchanges is a participant; '
       'each payday''s counters equal what its transfers and exchanges say. '
       'Also: no tip transfer of the open payday involves a participant who is suspicious (unless reversed); an '
       'exchange''s recorded_at is set iff it is not pre; no pre exchange belongs to any payday but the open one. '
       'Takes no argument; raises nothing.';
