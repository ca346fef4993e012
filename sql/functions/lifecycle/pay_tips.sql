CREATE OR REPLACE FUNCTION payday.pay_tips(
    OUT nparticipants bigint, OUT ntippers bigint, OUT ntips bigint,
    OUT ntransfers bigint, OUT transfer_volume numeric(35,2), OUT ncc_missing bigint)
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, payday, pg_temp
    -- One statement sorts, aggregates and hashes millions of rows: room for that, and hash
    -- or merge joins rather than millions of index probes (bench/README.md).
    SET work_mem = '256MB'
    SET jit = off  -- compiling costs more than it saves below ~1M tips
    SET enable_nestloop = off
    AS $$
DECLARE
    pd payday.paydays := payday.require_open_payday(true, 'payin');
    npre bigint;
    moved_out numeric;
    moved_in numeric;
    -- Since schema 0006 a payday's tip transfers are a partition of payday.transfers of
    -- their own, ids [id * 2^40, (id + 1) * 2^40). A database downgraded to 0005 has no
    -- partitions: the same statement then inserts into payday.transfers itself.
    partitioned boolean := (SELECT c.relkind = 'p' FROM pg_class c WHERE c.oid = 'payday.transfers'::regclass);
    span constant bigint := 1099511627776;  -- 2^40
    first_id bigint := CASE WHEN partitioned THEN pd.id * span END;
    target text := CASE WHEN partitioned THEN format('transfers_payday_%s', pd.id) ELSE 'transfers' END;
BEGIN
    SELECT count(*) INTO npre FROM payday.exchanges WHERE payday_id = pd.id AND status = 'pre';
    IF npre > 0 THEN
        RAISE EXCEPTION 'payday % still has % charge(s) in state pre', pd.id, npre
            USING ERRCODE = '55000',
                  HINT = 'Record each outcome with payday.charge_outcome() (see payday.pending_exchanges()) first.';
    END IF;

    -- Every tip of the payday in one statement. A tipper's tips are paid oldest relationship
    -- first (ctime, tippee) while the running total fits the tipper's balance: amounts are
    -- positive, so "running total <= balance" is exactly "no earlier tip failed". Money
    -- received goes to pending, so each tipper depends only on their own balance, and every
    -- figure below comes from the one snapshot this statement reads.
    --
    -- The due tips are read once (`d`: an index-only scan in (tipper, tippee) order, see
    -- tips_pair_latest_idx) and summed per tipper (`tippers`). A tipper whose balance covers
    -- all they owe pays every tip, in whatever order: only the others (the few left short
    -- after the charges: no card, a failed charge, not yet reviewed) need their tips sorted
    -- and a running total, which is what used to sort every due tip of the payday
    -- (bench/README.md, sixth round). ncc_missing (SPEC 4.5) counts the short tippers
    -- without a funding source: what they owe exceeds their balance exactly when some tip
    -- of theirs fails.
    -- The big sums (per tipper, per tippee, the volume) add integer cents (bigint), which
    -- costs less a row than adding numerics; an amount of 10^13 or more, whose cents a bigint
    -- might not hold, is added as a numeric (bench/README.md, eleventh round). Each due tip's
    -- cents are worked out once, in `d`; what tippers pay and what tippees receive are
    -- summed apart, one sum a row, and meet in a full join (fourteenth round).
    -- Every tipper and tippee inserted below is a participant this statement updates (it
    -- checks that it updated each one, below): the reference check of transfers has
    -- nothing to add for it. The rows go into a table of the payday's own, attached once
    -- filled and indexed (sql/schema/0006_transfers_partitions.sql), so that check does not
    -- fire; on a database at schema 0005 they go into payday.transfers, and the statement
    -- tells the check to let them through (sql/schema/0004_scale.sql).
    IF partitioned THEN
        -- The payday's own partition, filled and indexed before anyone else can see it.
        IF to_regclass(format('payday.%I', target)) IS NOT NULL THEN
            RAISE EXCEPTION 'pay_tips: table payday.% already exists, payday % cannot put its tip transfers there',
                            target, pd.id
                USING ERRCODE = '42P07',
                      HINT = 'Only pay_tips() creates it. If it is not attached to payday.transfers, a DBA must look at '
                             'it and drop it; if it is, this payday''s tips were paid (see payday.check()).';
        END IF;
        -- Its ids' CHECK is the partition's bound (payday.attach_tip_transfers() attaches it).
        EXECUTE format('CREATE TABLE payday.%I (LIKE payday.transfers INCLUDING DEFAULTS INCLUDING CONSTRAINTS, '
                       'CONSTRAINT %I CHECK (id >= %s AND id < %s))', target, target || '_ids', first_id, first_id + span);
    ELSE
        PERFORM set_config('payday.tip_transfers_xact', pg_current_xact_id()::text, true);
    END IF;
    EXECUTE format($sql$
    WITH d AS MATERIALIZED (
        -- cents: the amount in integer cents for every sum below; NULL from 10^13 up.
        SELECT d.tipper, d.tippee, d.amount, d.ctime,  -- payday.due_tips, before the tipper is looked at
               CASE WHEN d.amount < 1e13 THEN (d.amount * 100)::bigint END AS cents
          FROM payday.payday_tips d
         WHERE d.amount > 0 AND d.tippee_claimed
    ), tippers AS MATERIALIZED (
        SELECT o.tipper, o.owed, o.owed <= p.balance AS pays_all, p.balance,
               p.balanced_account_uri IS NULL AND p.stripe_customer_id IS NULL AS unfunded
          FROM (SELECT d.tipper,
                       coalesce(sum(d.cents), 0) * 0.01 + coalesce(sum(d.amount) FILTER (WHERE d.cents IS NULL), 0) AS owed
                  FROM d GROUP BY d.tipper) o
          JOIN payday.participants p
            ON p.username = o.tipper AND p.claimed_time < $2 AND p.is_suspicious IS NOT TRUE
    ), due_all AS MATERIALIZED (
        -- The tips paid: all of those who can pay all, ...
        SELECT d.tipper, d.tippee, d.amount, d.cents
          FROM d JOIN tippers t ON t.tipper = d.tipper
         WHERE t.pays_all
    ), due_short AS MATERIALIZED (
        -- ... and the short tippers' in order until the first they cannot cover.
        SELECT s.tipper, s.tippee, s.amount, s.cents
          FROM (SELECT d.tipper, d.tippee, d.amount, d.cents, t.balance,
                       sum(d.amount) OVER (PARTITION BY d.tipper ORDER BY d.ctime, d.tippee
                                           ROWS UNBOUNDED PRECEDING) AS running
                  FROM d JOIN tippers t ON t.tipper = d.tipper
                 WHERE NOT t.pays_all) s
         WHERE s.running <= s.balance
    ), due AS NOT MATERIALIZED (  -- every paid tip: read in place, not copied
        SELECT tipper, tippee, amount, cents FROM due_all
        UNION ALL
        SELECT tipper, tippee, amount, cents FROM due_short
    ), paid AS (
        -- Ids: dense from the partition's first id, numbered as this one pass reads `due`
        -- (their order is not a contract); from the sequence on a table that is not
        -- partitioned (schema 0005).
        INSERT INTO payday.%I (id, tipper, tippee, amount, payday_id, context)
        SELECT coalesce($3 + row_number() OVER (), nextval('payday.transfers_id_seq')), tipper, tippee, amount, $1, 'tip'
          FROM due
    ), moved AS (
        -- The balances move by exactly the rows inserted above (both read the materialized
        -- due_all and due_short): no RETURNING to buffer a second copy of every transfer.
        -- Who pays all pays what they owe, summed already; what each tippee receives is
        -- summed apart, one sum a row, and the two sides meet in a full join (a participant
        -- can be both).
        UPDATE payday.participants p
           SET balance = p.balance - m.paid_out,
               pending = CASE WHEN m.received > 0 THEN coalesce(p.pending, 0) + m.received
                              ELSE p.pending END
          FROM (SELECT coalesce(o.username, r.username) AS username,
                       coalesce(o.paid_out, 0) AS paid_out, coalesce(r.received, 0) AS received
                  FROM (SELECT tipper AS username, owed AS paid_out FROM tippers WHERE pays_all
                        UNION ALL
                        SELECT tipper, sum(amount) FROM due_short GROUP BY tipper) o
                  FULL JOIN (SELECT tippee AS username,
                                    coalesce(sum(cents), 0) * 0.01
                                    + coalesce(sum(amount) FILTER (WHERE cents IS NULL), 0) AS received
                               FROM due GROUP BY tippee) r
                    ON r.username = o.username) m
         WHERE p.username = m.username
        RETURNING m.paid_out, m.received
    ), figures AS (
        SELECT (SELECT count(*) FROM tippers WHERE pays_all)
                   + (SELECT count(DISTINCT tipper) FROM due_short) AS ntippers,
               count(*) AS ntips,
               coalesce(sum(cents), 0) * 0.01 + coalesce(sum(amount) FILTER (WHERE cents IS NULL), 0) AS volume,
               -- Short of money with no funding source at all (SPEC 4.5).
               (SELECT count(*) FROM tippers WHERE NOT pays_all AND unfunded) AS ncc_missing
          FROM due
    )
    SELECT (SELECT count(*) FROM payday.payday_participants),
           f.ntippers, f.ntips,
           f.ntips,  -- one transfer per paid tip (payday.check() compares them with the table)
           f.volume, f.ncc_missing,
           m.paid_out, m.received
      FROM figures f,
           (SELECT coalesce(sum(paid_out), 0) AS paid_out, coalesce(sum(received), 0) AS received FROM moved) m
      $sql$, target)
      USING pd.id, pd.ts_start, first_id
      INTO nparticipants, ntippers, ntips, ntransfers, transfer_volume, ncc_missing, moved_out, moved_in;
    PERFORM set_config('payday.tip_transfers_xact', '', true);
    -- Every name the transfers carry must be a row the UPDATE moved: a participant renamed
    -- (or removed) by a transaction that committed after this statement's snapshot is
    -- skipped by the UPDATE, and its transfers would name nobody. Each name pays or receives
    -- a positive amount, so a skipped one shows in the sums: refuse it all then.
    IF moved_out <> transfer_volume OR moved_in <> transfer_volume THEN
        RAISE EXCEPTION 'pay_tips: a participant it pays or credits was renamed or removed while it ran (% of % paid out, % of % received); nothing was paid',
                        moved_out, transfer_volume, moved_in, transfer_volume
            USING ERRCODE = '40001',
                  HINT = 'A concurrent change, not a fault: call payday.pay_tips() again (payday run retries it).';
    END IF;

    IF partitioned THEN
        PERFORM payday.attach_tip_transfers(pd.id);
    END IF;

    UPDATE payday.paydays
       SET nparticipants = paydays.nparticipants + pay_tips.nparticipants,
           ntippers = paydays.ntippers + pay_tips.ntippers,
           ntips = paydays.ntips + pay_tips.ntips,
           ntransfers = paydays.ntransfers + pay_tips.ntransfers,
           transfer_volume = paydays.transfer_volume + pay_tips.transfer_volume,
           ncc_missing = paydays.ncc_missing + pay_tips.ncc_missing,
           phase = 'clear'
     WHERE id = pd.id;
END
$$;

COMMENT ON FUNCTION payday.pay_tips() IS
    'Pays every tip of the open payday in one set-based step (SPEC 4.6): per tipper, oldest relationship first, '
    'skipping zero tips and tippees not claimed before ts_start, stopping at the first tip the balance cannot cover; '
    'each paid tip moves from the tipper''s balance to the tippee''s pending and is recorded in transfers, in '
    'payday.transfers_payday_<id>: a partition of payday.transfers of its own, ids id * 2^40 + 1, + 2, ... (dense; their order is not a contract). '
    'Adds nparticipants, ntippers, ntips, ntransfers, transfer_volume and ncc_missing to the payday and moves it to '
    'phase clear. Returns what it added. Raises 55000 when no payday is open, it is not in phase payin, '
    'or a charge is still pre; 42P07 when the table payday.transfers_payday_<id> already exists; 40001 (nothing '
    'paid, call it again) when a participant it pays or credits was renamed or removed by a transaction that '
    'committed while it ran.';
