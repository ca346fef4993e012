"""SPEC §4 steps 4 and 6: which tips are paid, in which order, and the counters."""

from __future__ import annotations

from datetime import timedelta

from .world import BASE, D, Driver, World, balance, counters, pending, row, start, transfers, value


def _pay(db) -> dict:
    d = Driver(db)
    d.start()
    d.charges()
    return d.pay_tips()


def _finish(db) -> None:
    d = Driver(db)
    d.clear()
    d.credits()
    d.finish()


def test_tips_paid_oldest_relationship_first_and_stop_at_the_first_uncovered(db, world: World, tap) -> None:
    world.participant("alice", balance="10.00")
    for name in ["b", "c", "d", "e"]:
        world.participant(name)
    t = BASE + timedelta(days=3)
    world.tip("alice", "d", "4.00", ctime=t, mtime=t)                          # 1st: paid (6 left)
    world.tip("alice", "c", "5.00", ctime=t + timedelta(hours=1))              # 2nd: paid (1 left)
    world.tip("alice", "b", "2.00", ctime=t + timedelta(hours=2))              # 3rd: uncovered: stop
    world.tip("alice", "e", "1.00", ctime=t + timedelta(hours=3))              # 4th: coverable, but stopped
    got = _pay(db)
    assert transfers(db) == [("alice", "c", D("5.00")), ("alice", "d", D("4.00"))]
    assert (got["ntippers"], got["ntips"], got["ntransfers"], got["transfer_volume"]) == (1, 2, 2, D("9.00"))
    assert balance(db, "alice") == D("1.00")
    _finish(db)


def test_ctime_ties_break_by_tippee(db, world: World, tap) -> None:
    world.participant("alice", balance="5.00")
    for name in ["p3", "p1", "p2"]:
        world.participant(name)
    t = BASE + timedelta(days=3)
    world.tip("alice", "p3", "1.00", ctime=t)
    world.tip("alice", "p2", "3.00", ctime=t)
    world.tip("alice", "p1", "2.00", ctime=t)
    _pay(db)
    # p1 (2.00), p2 (3.00): 5.00 spent; p3 is next and uncovered.
    assert transfers(db) == [("alice", "p1", D("2.00")), ("alice", "p2", D("3.00"))]
    _finish(db)


def test_the_order_is_the_relationship_not_the_latest_change(db, world: World) -> None:
    """ctime is when the tipper first tipped the tippee; a later change keeps the place."""
    world.participant("alice", balance="5.00")
    world.participant("old")
    world.participant("new")
    t = BASE + timedelta(days=3)
    world.tip("alice", "old", "1.00", ctime=t, mtime=t)
    world.tip("alice", "new", "2.00", ctime=t + timedelta(days=1), mtime=t + timedelta(days=1))
    world.tip("alice", "old", "4.00", ctime=t, mtime=t + timedelta(days=2))    # raised later: still first
    _pay(db)
    assert transfers(db) == [("alice", "old", D("4.00"))]
    _finish(db)


def test_zero_tips_are_skipped_without_stopping(db, world: World) -> None:
    world.participant("alice", balance="5.00")
    for name in ["b", "c", "d"]:
        world.participant(name)
    t = BASE + timedelta(days=3)
    world.tip("alice", "b", "3.00", ctime=t)
    world.tip("alice", "c", "7.00", ctime=t + timedelta(hours=1), mtime=t + timedelta(hours=1))
    world.tip("alice", "c", "0.00", ctime=t + timedelta(hours=1), mtime=t + timedelta(hours=2))  # stopped
    world.tip("alice", "d", "2.00", ctime=t + timedelta(hours=3))
    got = _pay(db)
    assert transfers(db) == [("alice", "b", D("3.00")), ("alice", "d", D("2.00"))]
    assert got["ntips"] == 2
    _finish(db)


def test_unclaimed_and_late_tippees_are_skipped_without_stopping(db, world: World) -> None:
    world.participant("alice", balance="5.00")
    world.participant("stub", claimed=None)
    world.participant("late", claimed=None)
    world.participant("future", claimed=BASE + timedelta(days=365 * 100))
    world.participant("bob")
    t = BASE + timedelta(days=3)
    world.tip("alice", "stub", "100.00", ctime=t)
    world.tip("alice", "late", "100.00", ctime=t + timedelta(hours=1))
    world.tip("alice", "future", "100.00", ctime=t + timedelta(hours=2))
    world.tip("alice", "bob", "5.00", ctime=t + timedelta(hours=3))
    pd = start(db)
    world.claim("late", pd["ts_start"] + timedelta(minutes=1))
    Driver(db).pay_tips()
    assert transfers(db) == [("alice", "bob", D("5.00"))]
    assert pending(db, "late") is None and pending(db, "stub") is None
    _finish(db)
    assert balance(db, "late") == 0 and balance(db, "stub") == 0


def test_suspicious_tippees_and_tippers_are_excluded(db, world: World) -> None:
    world.participant("alice", balance="10.00")
    world.participant("crook", suspicious=True, balance="10.00")
    world.participant("newbie", suspicious=None, balance="10.00")
    world.participant("bob")
    t = BASE + timedelta(days=3)
    world.tip("alice", "crook", "3.00", ctime=t)
    world.tip("alice", "bob", "4.00", ctime=t + timedelta(hours=1))
    world.tip("crook", "bob", "5.00", ctime=t)
    world.tip("newbie", "bob", "6.00", ctime=t)        # unreviewed tippers do tip from their balance
    world.tip("alice", "newbie", "1.00", ctime=t + timedelta(hours=2))
    got = _pay(db)
    assert transfers(db) == [("alice", "bob", D("4.00")), ("alice", "newbie", D("1.00")),
                             ("newbie", "bob", D("6.00"))]
    assert got["nparticipants"] == 3       # alice, newbie, bob (not crook)
    assert pending(db, "crook") == 0, "pending is zeroed by claim time alone (SPEC §4.2), but nothing arrives"
    _finish(db)
    assert balance(db, "crook") == D("10.00")


def test_tip_changes_after_ts_start_are_ignored(db, world: World) -> None:
    world.participant("alice", balance="20.00")
    world.participant("bob")
    world.participant("carol")
    t = BASE + timedelta(days=3)
    world.tip("alice", "bob", "2.00", ctime=t, mtime=t)
    world.tip("alice", "bob", "3.00", ctime=t, mtime=t + timedelta(days=1))    # current at ts_start
    pd = start(db)
    after = pd["ts_start"] + timedelta(seconds=1)
    world.tip("alice", "bob", "9.00", ctime=t, mtime=after)                    # changed after start
    world.tip("alice", "carol", "4.00", ctime=after, mtime=after)              # started after start
    Driver(db).pay_tips()
    assert transfers(db) == [("alice", "bob", D("3.00"))]
    _finish(db)


def test_received_money_waits_in_pending(db, world: World, tap) -> None:
    """A tipper cannot spend money received in the same payday."""
    world.participant("alice", balance="5.00")
    world.participant("bob", balance="0.00")
    world.participant("carol")
    world.tip("alice", "bob", "5.00")
    world.tip("bob", "carol", "5.00")
    world.tip("carol", "alice", "1.00")
    _pay(db)
    assert transfers(db) == [("alice", "bob", D("5.00"))]
    tap.results_eq("SELECT username, balance, pending FROM payday.participants ORDER BY 1", [
        ("alice", D("0.00"), D("0.00")), ("bob", D("0.00"), D("5.00")), ("carol", D("0.00"), D("0.00"))])
    _finish(db)
    tap.results_eq("SELECT username, balance FROM payday.participants ORDER BY 1", [
        ("alice", D("0.00")), ("bob", D("5.00")), ("carol", D("0.00"))])


def test_a_cycle_of_tips_is_paid_from_opening_balances(db, world: World) -> None:
    world.participant("a", balance="3.00")
    world.participant("b", balance="3.00")
    world.participant("c", balance="0.00")
    world.tip("a", "b", "3.00")
    world.tip("b", "c", "3.00")
    world.tip("c", "a", "3.00")
    _pay(db)
    assert transfers(db) == [("a", "b", D("3.00")), ("b", "c", D("3.00"))]
    _finish(db)
    assert (balance(db, "a"), balance(db, "b"), balance(db, "c")) == (D("0.00"), D("3.00"), D("3.00"))


def test_tip_exactly_equal_to_the_balance_is_paid(db, world: World) -> None:
    world.participant("alice", balance="7.25")
    world.participant("bob")
    world.tip("alice", "bob", "7.25")
    _pay(db)
    assert transfers(db) == [("alice", "bob", D("7.25"))]
    assert balance(db, "alice") == 0
    _finish(db)


def test_counters(db, world: World, tap) -> None:
    world.participant("alice", balance="10.00")
    world.participant("bob", balance="1.00")
    world.participant("carol", balance="0.00")
    world.participant("dan", balance="0.00")
    world.participant("stub", claimed=None, balance="50.00")    # not a payin participant
    world.tip("alice", "bob", "2.00")
    world.tip("alice", "carol", "3.00")
    world.tip("bob", "carol", "1.00")
    world.tip("carol", "dan", "1.00")                          # uncovered
    world.tip("stub", "alice", "5.00")                         # stubs do not tip
    got = _pay(db)
    want = dict(nparticipants=4, ntippers=2, ntips=3, ntransfers=3, transfer_volume=D("6.00"), ncc_missing=1)
    assert got == want
    c = counters(db)
    assert {k: c[k] for k in want} == want
    tap.is_("SELECT count(*) FROM payday.transfers WHERE context = 'tip' AND payday_id = %s", 3,
            params=[value(db, "SELECT id FROM payday.open_payday()")])
    _finish(db)


def test_transfers_record_the_payday(db, world: World, tap) -> None:
    world.participant("alice", balance="10.00")
    world.participant("bob")
    world.tip("alice", "bob", "2.00")
    pd = start(db)
    Driver(db).pay_tips()
    r = row(db, "SELECT tipper, tippee, amount, payday_id, context, \"timestamp\" >= %s AS after_start"
                " FROM payday.transfers", (pd["ts_start"],))
    assert r == dict(tipper="alice", tippee="bob", amount=D("2.00"), payday_id=pd["id"], context="tip",
                     after_start=True)
    _finish(db)


def test_a_manual_transfer_does_not_count_as_the_pair_being_paid(db, world: World) -> None:
    world.participant("alice", balance="10.00")
    world.participant("bob")
    world.tip("alice", "bob", "2.00")
    start(db)
    value(db, "SELECT payday.transfer('alice', 'bob', 1.00)")
    Driver(db).pay_tips()
    assert transfers(db) == [("alice", "bob", D("1.00")), ("alice", "bob", D("2.00"))]
    assert pending(db, "bob") == D("3.00")
    _finish(db)


def test_charge_then_tips(db, world: World) -> None:
    """The charge covers what is owed; failed charges leave what the balance covers."""
    world.participant("alice", balance="2.00", stripe="cus_alice")
    world.participant("fails", balance="2.00", stripe="cus_fail")
    world.participant("bob")
    world.participant("carol")
    t = BASE + timedelta(days=3)
    for who in ["alice", "fails"]:
        world.tip(who, "bob", "1.50", ctime=t)
        world.tip(who, "carol", "1.50", ctime=t + timedelta(hours=1))
    _pay(db)
    assert transfers(db) == [("alice", "bob", D("1.50")), ("alice", "carol", D("1.50")),
                             ("fails", "bob", D("1.50"))]
    assert balance(db, "alice") == D("2.00") + D("9.32") - D("3.00")
    assert balance(db, "fails") == D("0.50")
    _finish(db)


def test_many_tippers_in_one_statement(db, world: World, tap) -> None:
    """Set-based: 200 tippers, 5 tips each, one pay_tips() call."""
    for i in range(50):
        world.participant(f"tippee{i:03}")
    db.execute("""
        INSERT INTO payday.participants (username, claimed_time, is_suspicious, balance,
                                         balanced_account_uri, stripe_customer_id)
        SELECT 'tipper' || lpad(i::text, 3, '0'), %s, false, (i %% 7)::numeric, NULL, NULL
          FROM generate_series(0, 199) i""", (BASE,))
    db.execute("""
        INSERT INTO payday.tips (ctime, mtime, tipper, tippee, amount)
        SELECT %s + (j || ' minutes')::interval, %s + (j || ' minutes')::interval,
               'tipper' || lpad(i::text, 3, '0'), 'tippee' || lpad(((i + j * 7) %% 50)::text, 3, '0'),
               (j + 1)::numeric
          FROM generate_series(0, 199) i, generate_series(0, 4) j""", (BASE, BASE))
    got = _pay(db)
    # Balance b = i % 7, tips 1, 2, 3, 4, 5 in order: paid while the running total fits.
    expected_tips = 0
    expected_volume = D(0)
    for i in range(200):
        left = i % 7
        for amount in range(1, 6):
            if amount > left:
                break
            left -= amount
            expected_tips += 1
            expected_volume += amount
    assert (got["ntips"], got["transfer_volume"]) == (expected_tips, expected_volume)
    _finish(db)
