CREATE OR REPLACE FUNCTION payday.check_ledger(recent boolean)
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
    span constant bigint := 1099511627776;  -- 2^40: ids below are the ledger partition's (schema 0006)
    pd payday.paydays := payday.open_payday();
    reversed bigint[] := '{}';
    suspicious text[];
    -- With `recent` and a ledger mark: what the mark's payday and those before it wrote
    -- was checked when it closed. Later rows are the tip transfers of later paydays (ids
    -- from (since + 1) * 2^40), the manual transfers numbered after the mark's last one,
    -- and the exchanges of later paydays.
    since bigint;
    ledger_after bigint;
    transfers_since text := '';     -- an AND clause on payday.transfers t ('': every row)
    exchanges_since text := '';     -- an AND clause on payday.exchanges x
    paydays_since text := '';       -- an AND clause on payday.paydays d
    base text := 'p.opening_balance';  -- a participant's balance before those rows
    mark_join text := '';
BEGIN
    IF recent IS NULL THEN
        RAISE EXCEPTION 'check_ledger: recent must be true (from the latest ledger mark) or false (the whole history)'
            USING ERRCODE = '22004';
    END IF;
    IF recent AND to_regclass('payday.ledger_marks') IS NOT NULL THEN
        EXECUTE 'SELECT m.payday_id, m.last_ledger_transfer FROM payday.ledger_marks m ORDER BY m.payday_id DESC LIMIT 1'
           INTO since, ledger_after;
    END IF;
    IF since IS NOT NULL THEN
        transfers_since := format('AND (t.id >= %s OR (t.id < %s AND t.id > %s))', (since + 1) * span, span, ledger_after);
        exchanges_since := format('AND x.payday_id > %s', since);
        paydays_since := format('AND d.id > %s', since);
        base := 'coalesce(m.balance, p.opening_balance)';
        mark_join := 'LEFT JOIN payday.ledger_mark m ON m.username = p.username';
    END IF;

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

    -- Every balance (plus pending, during a payday) equals its ledger, and each payday's
    -- counters equal what its transfers and exchanges say. One statement for both: the
    -- sums per (payday, tipper) serve the counters and the tippers' side of the ledger, so
    -- the transfers are read twice (by tipper, by tippee), not three times (bench/README.md,
    -- twelfth round).
    RETURN QUERY EXECUTE format($q$
        WITH per_tipper AS MATERIALIZED (
            -- Hashed by (payday, tipper) first: ntippers is then a plain count, with no
            -- count(DISTINCT) sorting the payday's transfers. Manual transfers outside a
            -- payday (payday_id NULL) count in the ledger, not in any payday's counters.
            SELECT t.payday_id, t.tipper,
                   count(*) AS ntransfers,
                   coalesce(sum((t.amount * 100)::bigint) FILTER (WHERE t.amount < 1e13), 0) * 0.01
                   + coalesce(sum(t.amount) FILTER (WHERE t.amount >= 1e13), 0) AS transfer_volume,
                   count(*) FILTER (WHERE t.context = 'tip') AS ntips
              FROM payday.transfers t WHERE true %2$s GROUP BY t.payday_id, t.tipper
        ), moves AS (
            SELECT x.participant AS username,
                   CASE WHEN x.kind = 'charge' THEN x.amount ELSE x.amount - x.fee END AS delta
              FROM payday.exchanges x WHERE x.status = 'succeeded' %1$s
            UNION ALL
            SELECT t.tippee, t.amount FROM payday.transfers t WHERE true %2$s
            UNION ALL
            SELECT p.tipper, -p.transfer_volume FROM per_tipper p
        ), ledger AS (
            -- In integer cents (bigint) but for amounts of 10^13 and more: the cheaper sum.
            SELECT m.username,
                   coalesce(sum((m.delta * 100)::bigint) FILTER (WHERE abs(m.delta) < 1e13), 0) * 0.01
                   + coalesce(sum(m.delta) FILTER (WHERE abs(m.delta) >= 1e13), 0) AS delta
              FROM moves m GROUP BY m.username
        ), t AS (
            SELECT p.payday_id,
                   sum(p.ntransfers) AS ntransfers, sum(p.transfer_volume) AS transfer_volume,
                   sum(p.ntips) AS ntips, count(*) FILTER (WHERE p.ntips > 0) AS ntippers
              FROM per_tipper p WHERE p.payday_id IS NOT NULL GROUP BY p.payday_id
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
              FROM payday.exchanges x WHERE true %1$s GROUP BY x.payday_id
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
             WHERE true %5$s
        )
        -- A ledger name that is no participant is money nobody holds (a transfer or an
        -- exchange written for a name that was gone): reported on its own.
        SELECT CASE WHEN p.username IS NULL THEN 'ledger entries of no participant'
                    ELSE 'balance differs from ledger' END,
               coalesce(p.username, l.username),
               CASE WHEN p.username IS NULL THEN 'a participant'
                    ELSE (%3$s + coalesce(l.delta, 0))::text END,
               CASE WHEN p.username IS NULL THEN format('no participant; the ledger moves %%s', l.delta)
                    ELSE (p.balance + coalesce(p.pending, 0))::text END
          FROM payday.participants p
          FULL JOIN ledger l ON l.username = p.username
          %4$s
         WHERE p.username IS NULL
            OR p.balance + coalesce(p.pending, 0) <> %3$s + coalesce(l.delta, 0)
        UNION ALL
        SELECT 'payday counter ' || c.name, 'payday ' || d.id, c.expected::text, c.actual::text
          FROM derived d
          CROSS JOIN LATERAL unnest(d.names, d.expected, d.actual) AS c(name, expected, actual)
         WHERE c.expected <> c.actual
        $q$, exchanges_since, transfers_since, base, mark_join, paydays_since);

    -- A marked balance of a name that is no participant (a rename cascades into the mark).
    IF since IS NOT NULL THEN
        RETURN QUERY
            SELECT 'ledger mark of no participant', m.username, 'a participant',
                   format('no participant; the mark holds %s', m.balance)
              FROM payday.ledger_mark m
             WHERE NOT EXISTS (SELECT 1 FROM payday.participants p WHERE p.username = m.username);
    END IF;

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
    RETURN QUERY EXECUTE format($q$
        SELECT 'exchange outcome not recorded consistently', x.participant,
               CASE WHEN x.status = 'pre' THEN 'recorded_at NULL' ELSE 'recorded_at set' END,
               format('exchange %%s: status %%s, recorded_at %%s', x.id, x.status, coalesce(x.recorded_at::text, 'NULL'))
          FROM payday.exchanges x
         WHERE (x.status = 'pre') <> (x.recorded_at IS NULL) %1$s
        $q$, exchanges_since);

    -- No pre exchange outlives its payday: every pre exchange belongs to the open payday.
    RETURN QUERY EXECUTE format($q$
        SELECT 'pre exchange outside the open payday', x.participant,
               CASE WHEN $1 IS NULL THEN 'no pre exchange (no payday open)'
                    ELSE format('pre only in the open payday %%s', $1) END,
               format('exchange %%s of payday %%s is pre', x.id, x.payday_id)
          FROM payday.exchanges x
         WHERE x.status = 'pre' AND x.payday_id IS DISTINCT FROM $1 %1$s
        $q$, exchanges_since) USING pd.id;

    -- The paydays read the tips through payday.current_tips (schema 0012), which triggers
    -- keep: the full audit compares each pair's row with its history (a whole pass over the
    -- tips; check_recent() trusts the triggers, as it trusts the history before its mark).
    IF NOT recent AND to_regclass('payday.current_tips') IS NOT NULL THEN
        RETURN QUERY EXECUTE $q$
            SELECT 'current tip differs from tips', coalesce(h.tipper, c.tipper) || ' -> ' || coalesce(h.tippee, c.tippee),
                   CASE WHEN h.id IS NULL THEN 'no current tip (no tip in payday.tips)'
                        ELSE format('tip %s: %s', h.id, h.amount) END,
                   CASE WHEN c.tip_id IS NULL THEN 'no row in payday.current_tips'
                        ELSE format('tip %s: %s', c.tip_id, c.amount) END
              FROM (SELECT DISTINCT ON (x.tipper, x.tippee) x.tipper, x.tippee, x.id, x.amount, x.ctime, x.mtime
                      FROM payday.tips x
                     ORDER BY x.tipper, x.tippee, x.mtime DESC, x.id DESC) h
              FULL JOIN payday.current_tips c ON c.tipper = h.tipper AND c.tippee = h.tippee
             WHERE (h.id, h.amount, h.ctime, h.mtime) IS DISTINCT FROM (c.tip_id, c.amount, c.ctime, c.mtime)
        $q$;
    END IF;
END
$$;

COMMENT ON FUNCTION payday.check_ledger(boolean)
    IS 'The invariants of SPEC 6, for payday.check() (recent false: the whole history) and payday.check_recent() '
       '(recent true: from the latest ledger mark, when there is one). One row per violation (what, who, expected, '
       'actual), none when all hold; see their comments for the list. Raises 22004 when recent is NULL. The schema '
       'owner''s (no grant): call payday.check() or payday.check_recent().';
