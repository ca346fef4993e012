"""payday.transfer(): the DBA's manual transfer, outside and inside a payday."""

from __future__ import annotations

from .world import D, Driver, World, balance, counters, participant, pending, row, start, value


def _pair(world: World, alice: str = "10.00") -> None:
    world.participant("alice", balance=alice)
    world.participant("bob", balance="1.00")


def test_outside_a_payday_balance_to_balance(db, world: World, tap) -> None:
    _pair(world)
    tid = value(db, "SELECT payday.transfer('alice', 'bob', 2.50)")
    t = row(db, "SELECT * FROM payday.transfers")
    assert (t["id"], t["tipper"], t["tippee"], t["amount"], t["payday_id"], t["context"]) == (
        tid, "alice", "bob", D("2.50"), None, "manual")
    tap.results_eq("SELECT username, balance, pending FROM payday.participants ORDER BY 1",
                   [("alice", D("7.50"), None), ("bob", D("3.50"), None)])


def test_outside_a_payday_after_one_finished_does_not_count(db, world: World, tap) -> None:
    _pair(world)
    pd = Driver(db).run()
    value(db, "SELECT payday.transfer('alice', 'bob', 1.00)")
    assert counters(db, pd["id"])["ntransfers"] == 0
    tap.is_("SELECT payday_id FROM payday.transfers", None)


def test_during_payin_to_pending_and_counted(db, world: World, tap) -> None:
    _pair(world)
    pd = start(db)
    value(db, "SELECT payday.transfer('alice', 'bob', 2.00)")
    assert (balance(db, "alice"), balance(db, "bob"), pending(db, "bob")) == (D("8.00"), D("1.00"), D("2.00"))
    c = counters(db, pd["id"])
    assert (c["ntransfers"], c["transfer_volume"], c["ntips"]) == (1, D("2.00"), 0)
    tap.is_("SELECT payday_id FROM payday.transfers", pd["id"])
    d = Driver(db)
    d.pay_tips(), d.clear(), d.finish()
    assert (balance(db, "alice"), balance(db, "bob")) == (D("8.00"), D("3.00"))


def test_during_payin_to_a_late_claimer_clears_too(db, world: World, tap) -> None:
    world.participant("alice", balance="5.00")
    world.participant("stub", claimed=None)
    start(db)
    value(db, "SELECT payday.transfer('alice', 'stub', 2.00)")
    assert pending(db, "stub") == D("2.00")
    d = Driver(db)
    d.pay_tips(), d.clear()
    assert (balance(db, "stub"), pending(db, "stub")) == (D("2.00"), None)
    d.finish()


def test_during_clear_to_pending(db, world: World) -> None:
    _pair(world)
    d = Driver(db)
    d.start(), d.pay_tips()
    value(db, "SELECT payday.transfer('alice', 'bob', 2.00)")
    assert pending(db, "bob") == D("2.00")
    d.clear(), d.finish()
    assert balance(db, "bob") == D("3.00")


def test_received_pending_is_not_transferable(db, world: World, tap) -> None:
    _pair(world, alice="0.00")
    world.participant("carol", balance="5.00")
    start(db)
    value(db, "SELECT payday.transfer('carol', 'alice', 5.00)")
    tap.throws_ok("SELECT payday.transfer('alice', 'bob', 1.00)", "PD001")
    d = Driver(db)
    d.pay_tips(), d.clear(), d.finish()


def test_during_payout_balance_to_balance_and_counted(db, world: World, tap) -> None:
    _pair(world)
    d = Driver(db)
    pd = d.start()
    d.pay_tips(), d.clear()
    value(db, "SELECT payday.transfer('alice', 'bob', 2.00)")
    tap.results_eq("SELECT username, balance, pending FROM payday.participants ORDER BY 1",
                   [("alice", D("8.00"), None), ("bob", D("3.00"), None)])
    c = counters(db, pd["id"])
    assert (c["ntransfers"], c["transfer_volume"]) == (1, D("2.00"))
    d.finish()


def test_never_overdraws(db, world: World, tap) -> None:
    _pair(world)
    tap.throws_ok("SELECT payday.transfer('alice', 'bob', 10.01)", "PD001", "cannot transfer")
    value(db, "SELECT payday.transfer('alice', 'bob', 10.00)")      # the whole balance is fine
    assert balance(db, "alice") == 0
    tap.throws_ok("SELECT payday.transfer('alice', 'bob', 0.01)", "PD001")


def test_money_reserved_by_a_pre_credit_is_not_transferable(db, world: World, tap) -> None:
    world.participant("alice", balance="30.00", balanced="/v1/accounts/a")
    world.participant("bob")
    world.participant("stub", claimed=None)
    world.tip("alice", "stub", "5.00")               # obligations 5.00: payout 25.00
    d = Driver(db)
    d.start(), d.pay_tips(), d.clear()
    xid = value(db, "SELECT payday.credit_intent('alice')")
    tap.throws_ok("SELECT payday.transfer('alice', 'bob', 5.01)", "PD001", "reserved")
    value(db, "SELECT payday.transfer('alice', 'bob', 5.00)")        # what is not reserved
    db.execute("SELECT payday.credit_outcome(%s, true)", (xid,))
    assert balance(db, "alice") == 0
    d.finish()


def test_money_reserved_by_a_failed_credit_is_released(db, world: World, tap) -> None:
    world.participant("alice", balance="30.00", balanced="/v1/accounts/a")
    world.participant("bob")
    d = Driver(db)
    d.start(), d.pay_tips(), d.clear()
    xid = value(db, "SELECT payday.credit_intent('alice')")
    tap.throws_ok("SELECT payday.transfer('alice', 'bob', 1.00)", "PD001")
    db.execute("SELECT payday.credit_outcome(%s, false, 'no')", (xid,))
    value(db, "SELECT payday.transfer('alice', 'bob', 30.00)")
    d.finish()


def test_self_transfer(db, world: World, tap) -> None:
    _pair(world)
    tap.throws_ok("SELECT payday.transfer('alice', 'alice', 1.00)", "23514", "themselves")


def test_unknown_users(db, world: World, tap) -> None:
    _pair(world)
    tap.throws_ok("SELECT payday.transfer('nobody', 'bob', 1.00)", "P0002", 'unknown tipper "nobody"')
    tap.throws_ok("SELECT payday.transfer('alice', 'nobody', 1.00)", "P0002", 'unknown tippee "nobody"')
    tap.throws_ok("SELECT payday.transfer('Alice', 'bob', 1.00)", "P0002")


def test_transfers_between_anyone(db, world: World) -> None:
    """Manual transfers are the DBA's call: stubs and suspicious participants too."""
    world.participant("crook", suspicious=True, balance="5.00")
    world.participant("stub", claimed=None)
    value(db, "SELECT payday.transfer('crook', 'stub', 5.00)")
    assert participant(db, "stub")["balance"] == D("5.00")
