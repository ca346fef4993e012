"""SPEC §6: payday.check() finds each kind of violation (data damaged on purpose)."""

from __future__ import annotations

import pytest

from .world import D, Driver, World, corrupt, rows, start, value

pytestmark = pytest.mark.corrupt


def _violations(db) -> list[tuple]:
    return [(r["what"], r["who"], r["expected"], r["actual"]) for r in rows(db, "SELECT * FROM payday.check()")]


def _paid_world(db, world: World) -> None:
    world.participant("alice", balance="5.00", stripe="cus_a")
    world.participant("bob", balance="20.00", balanced="/v1/accounts/b")
    world.tip("alice", "bob", "7.00")
    Driver(db).run()
    assert _violations(db) == []


def test_clean_database(db, world: World) -> None:
    assert _violations(db) == []
    _paid_world(db, world)


def test_negative_balance_is_prevented_by_a_constraint(db, world: World, tap) -> None:
    world.participant("alice")
    tap.throws_ok("UPDATE payday.participants SET balance = -0.01", "23514")
    tap.throws_ok("UPDATE payday.participants SET pending = -0.01", "23514")
    tap.throws_ok("""INSERT INTO payday.participants (username, claimed_time, is_suspicious, balance,
                     balanced_account_uri, stripe_customer_id) VALUES ('x', NULL, NULL, -1, NULL, NULL)""", "23514")


def test_negative_balance_is_reported(db, world: World) -> None:
    world.participant("alice")
    corrupt(db, "ALTER TABLE payday.participants DROP CONSTRAINT participants_balance_check",
            "UPDATE payday.participants SET balance = -1.00")
    found = _violations(db)
    assert ("negative balance", "alice", ">= 0", "-1.00") in found, found


def test_balance_differs_from_ledger(db, world: World) -> None:
    _paid_world(db, world)
    db.execute("UPDATE payday.participants SET balance = balance + 1 WHERE username = 'alice'")
    # alice: 5.00 + 9.32 charged - 7.00 tipped = 7.32
    assert _violations(db) == [("balance differs from ledger", "alice", "7.32", "8.32")]


@pytest.mark.parametrize("damage, who", [
    ("DELETE FROM payday.transfers", {"alice", "bob"}),
    ("UPDATE payday.exchanges SET amount = amount + 1 WHERE amount > 0", {"alice"}),
    ("UPDATE payday.exchanges SET fee = fee + 1 WHERE amount < 0", {"bob"}),
    ("UPDATE payday.exchanges SET status = 'failed', error = 'x' WHERE amount < 0", {"bob"}),
])
def test_ledger_damage_is_reported(db, world: World, damage: str, who: set[str]) -> None:
    _paid_world(db, world)
    corrupt(db, damage)
    found = _violations(db)
    assert {v[1] for v in found if v[0] == "balance differs from ledger"} == who, found


def test_ledger_entries_of_no_participant_are_reported(db, world: World) -> None:
    """Money nobody holds: a transfer naming someone who is not a participant (what a
    concurrent rename could have left, had pay_tips not refused it) is reported on its own,
    besides the balance it no longer explains."""
    _paid_world(db, world)
    corrupt(db, "UPDATE payday.transfers SET tipper = 'ghost'")
    assert sorted(_violations(db)) == [
        ("balance differs from ledger", "alice", "14.32", "7.32"),  # 5.00 + 9.32, the 7.00 tip now ghost's
        ("ledger entries of no participant", "ghost", "a participant", "no participant; the ledger moves -7.00"),
    ]


def test_pending_outside_a_payday(db, world: World) -> None:
    world.participant("alice")
    db.execute("UPDATE payday.participants SET pending = 0")
    assert _violations(db) == [("pending outside payday", "alice", "NULL", "0.00")]


def test_pending_after_clearing(db, world: World) -> None:
    world.participant("alice")
    d = Driver(db)
    d.start(), d.pay_tips(), d.clear()
    assert _violations(db) == []
    db.execute("UPDATE payday.participants SET pending = 0")
    assert _violations(db) == [("pending outside payday", "alice", "NULL", "0.00")]


def test_pending_during_a_payday_is_fine(db, world: World) -> None:
    world.participant("alice", balance="5.00")
    world.participant("bob")
    world.tip("alice", "bob", "5.00")
    d = Driver(db)
    d.start()
    assert _violations(db) == []
    d.pay_tips()
    assert _violations(db) == []


@pytest.mark.parametrize("counter, expected", [
    ("ntransfers", "1"), ("transfer_volume", "7.00"), ("ntips", "1"), ("ntippers", "1"),
    ("ncharges", "1"), ("charge_volume", "10.00"), ("charge_fees_volume", "0.68"), ("ncc_failing", "0"),
    ("nachs", "1"), ("ach_volume", "-26.70"), ("ach_fees_volume", "0.30"), ("nach_failing", "0"),
])
def test_each_counter_is_checked(db, world: World, counter: str, expected: str) -> None:
    _paid_world(db, world)
    pd = value(db, "SELECT max(id) FROM payday.paydays")
    corrupt(db, f"UPDATE payday.paydays SET {counter} = {counter} + 1")
    found = _violations(db)
    assert len(found) == 1 and found[0][:3] == (f"payday counter {counter}", f"payday {pd}", expected), found
    assert D(found[0][3]) == D(expected) + 1


def test_two_open_paydays(db) -> None:
    start(db)
    corrupt(db, "ALTER TABLE payday.paydays DROP CONSTRAINT paydays_ts_end_key",
            "INSERT INTO payday.paydays DEFAULT VALUES")
    assert ("open paydays", "paydays", "at most 1", "2") in _violations(db)


def test_finish_lists_the_violations(db, world: World, tap) -> None:
    world.participant("alice", balance="5.00")
    d = Driver(db)
    d.start(), d.pay_tips(), d.clear()
    corrupt(db, "UPDATE payday.participants SET balance = 6.00", "UPDATE payday.paydays SET ntips = 4")
    err = tap.throws_ok("SELECT payday.finish()", "PD004")
    text = err.diag.message_primary
    assert "balance differs from ledger alice" in text and "payday counter ntips" in text, text
