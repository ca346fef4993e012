CREATE OR REPLACE FUNCTION payday.pay_tips(
    OUT nparticipants bigint, OUT ntippers bigint, OUT ntips bigint,
    OUT ntransfers bigint, OUT transfer_volume numeric(35,2), OUT ncc_missing bigint)
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, payday, pg_temp
    AS $$
DECLARE
    pd payday.paydays := payday.require_open_payday(true, 'payin');
    npre bigint;
    nmoved bigint;
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
    WITH owed AS (
        SELECT tipper, sum(amount) AS owed FROM payday.due_tips WHERE tippee_claimed GROUP BY tipper
    ), paid AS MATERIALIZED (
        SELECT t.tipper, t.tippee, t.amount, t.ctime
          FROM (SELECT d.tipper, d.tippee, d.amount, d.ctime, p.balance,
                       sum(d.amount) OVER (PARTITION BY d.tipper ORDER BY d.ctime, d.tippee
                                           ROWS UNBOUNDED PRECEDING) AS running
                  FROM payday.due_tips d
                  JOIN payday.participants p ON p.username = d.tipper
                 WHERE d.amount > 0 AND d.tippee_claimed) t
         WHERE t.running <= t.balance
    ), recorded AS (
        INSERT INTO payday.transfers (tipper, tippee, amount, payday_id, context)
        SELECT tipper, tippee, amount, pd.id, 'tip' FROM paid ORDER BY tipper, ctime, tippee
        RETURNING 1
    ), moved AS (
        UPDATE payday.participants p
           SET balance = p.balance - d.paid_out,
               pending = CASE WHEN d.received > 0 THEN coalesce(p.pending, 0) + d.received
                              ELSE p.pending END
          FROM (SELECT username, sum(paid_out) AS paid_out, sum(received) AS received
                  FROM (SELECT tipper AS username, amount AS paid_out, 0 AS received FROM paid
                        UNION ALL
                        SELECT tippee, 0, amount FROM paid) m
                 GROUP BY username) d
         WHERE p.username = d.username
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM payday.payday_participants),
           (SELECT count(DISTINCT tipper) FROM paid),
           (SELECT count(*) FROM paid),
           (SELECT count(*) FROM recorded),
           (SELECT coalesce(sum(amount), 0) FROM paid),
           -- Short of money with no funding source at all (SPEC 4.5).
           (SELECT count(*) FROM payday.payday_participants p JOIN owed o ON o.tipper = p.username
             WHERE o.owed > p.balance
               AND p.balanced_account_uri IS NULL AND p.stripe_customer_id IS NULL),
           (SELECT count(*) FROM moved)
      INTO nparticipants, ntippers, ntips, ntransfers, transfer_volume, ncc_missing, nmoved;

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
    'each paid tip moves from the tipper''s balance to the tippee''s pending and is recorded in transfers. '
    'Adds nparticipants, ntippers, ntips, ntransfers, transfer_volume and ncc_missing to the payday and moves it to '
    'phase clear. Returns what it added. Raises 55000 when no payday is open, it is not in phase payin, '
    'or a charge is still pre.';
