"""Ledger marks (schema 0010): finish() marks every balance once the invariants hold, and
payday.check_recent() checks from the latest mark; payday.check() stays the full audit."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

import psycopg
import pytest

from .world import D, Driver, World, corrupt, rows, value


def recent(db) -> list[tuple]:
    return [(r["what"], r["who"], r["expected"], r["actual"]) for r in rows(db, "SELECT * FROM payday.check_recent()")]


def full(db) -> list[tuple]:
    return [(r["what"], r["who"], r["expected"], r["actual"]) for r in rows(db, "SELECT * FROM payday.check()")]


def mark(db) -> dict[str, Decimal]:
    return {r["username"]: r["balance"] for r in rows(db, "SELECT * FROM payday.ledger_mark")}


def marks(db) -> list[tuple]:
    return [(r["payday_id"], r["last_ledger_transfer"], r["nbalances"])
            for r in rows(db, "SELECT * FROM payday.ledger_marks ORDER BY payday_id")]


def community(world: World) -> None:
    world.participant("alice", balance="5.00", stripe="cus_a")
    world.participant("bob", balance="20.00", balanced="/v1/accounts/b")
    world.participant("carol", balance="3.00")  # nothing moves for her
    world.tip("alice", "bob", "7.00")


def test_finish_marks_every_balance_that_moved(db, world: World) -> None:
    community(world)
    assert marks(db) == [] and mark(db) == {}
    pd = Driver(db).run()
    # alice: 5.00 + 9.32 charged - 7.00 = 7.32; bob: 20.00 + 7.00 - 26.70 paid out (and its
    # 0.30 fee) = 0; carol still holds her opening balance: no row.
    assert mark(db) == {"alice": D("7.32"), "bob": D("0.00")}
    assert marks(db) == [(pd["id"], 0, 2)]
    assert recent(db) == [] and full(db) == []


def test_the_next_finish_replaces_the_mark(db, world: World) -> None:
    community(world)
    first = Driver(db).run()["id"]
    db.execute("SELECT payday.transfer('alice', 'carol', 2.00)")  # between paydays: no payday
    world.tip("alice", "carol", "1.00")
    second = Driver(db).run(between=lambda: None)["id"]
    assert [m[0] for m in marks(db)] == [first, second]
    last_manual = value(db, "SELECT max(id) FROM payday.transfers WHERE id < 2^40")
    assert marks(db)[-1][1] == last_manual
    assert mark(db) == {r["username"]: r["balance"] for r in rows(
        db, "SELECT username, balance FROM payday.participants WHERE balance <> opening_balance")}
    assert value(db, "SELECT count(*) FROM pg_class WHERE relname LIKE 'ledger_mark%%' AND relkind = 'r'") == 2
    assert recent(db) == [] and full(db) == []


@pytest.mark.corrupt
def test_check_recent_trusts_the_history_before_the_mark(db, world: World) -> None:
    """Damage to a closed payday's rows (only possible with the triggers off) is the full
    audit's to find; what the mark covers is not re-added."""
    community(world)
    Driver(db).run()
    corrupt(db, "UPDATE payday.transfers SET amount = 6.00")
    assert {v[1] for v in full(db) if v[0] == "balance differs from ledger"} == {"alice", "bob"}
    assert recent(db) == []


@pytest.mark.corrupt
def test_check_recent_sees_a_balance_changed_after_the_mark(db, world: World) -> None:
    community(world)
    Driver(db).run()
    corrupt(db, "UPDATE payday.participants SET balance = balance + 1 WHERE username = 'carol'")
    expected = [("balance differs from ledger", "carol", "3.00", "4.00")]
    assert recent(db) == expected and full(db) == expected


@pytest.mark.corrupt
def test_check_recent_adds_what_came_after_the_mark(db, world: World, tap) -> None:
    """Manual transfers after the mark, and the next payday's rows, are added to the marked
    balances: right, they pass; damaged, they are reported, and finish() refuses."""
    community(world)
    Driver(db).run()
    tid = value(db, "SELECT payday.transfer('alice', 'carol', 2.00)")
    world.participant("dave", balance="1.00")  # created after the mark
    db.execute("SELECT payday.transfer('dave', 'carol', 0.50)")
    assert recent(db) == []
    corrupt(db, f"UPDATE payday.transfers SET amount = 3.00 WHERE id = {tid}")
    assert sorted(recent(db)) == sorted(full(db)) == [
        ("balance differs from ledger", "alice", "4.32", "5.32"),
        ("balance differs from ledger", "carol", "6.50", "5.50"),
    ]
    corrupt(db, f"UPDATE payday.transfers SET amount = 2.00 WHERE id = {tid}")
    d = Driver(db)
    d.start(), d.charges(), d.pay_tips(), d.clear(), d.credits()
    corrupt(db, "UPDATE payday.paydays SET ncharges = ncharges + 1 WHERE ts_end = payday.open_sentinel()")
    tap.throws_ok("SELECT payday.finish()", "PD004", "payday counter ncharges")
    assert [v[0] for v in recent(db)] == ["payday counter ncharges"]


@pytest.mark.corrupt
def test_a_closed_paydays_counters_are_the_full_audits(db, world: World) -> None:
    community(world)
    first = Driver(db).run()["id"]
    corrupt(db, f"UPDATE payday.paydays SET ntips = 9 WHERE id = {first}")
    assert [v[0] for v in full(db)] == ["payday counter ntips"]
    assert recent(db) == []


def test_a_rename_follows_into_the_mark(db, world: World) -> None:
    community(world)
    Driver(db).run()
    db.execute("UPDATE payday.participants SET username = 'alicia' WHERE username = 'alice'")
    assert "alicia" in mark(db) and "alice" not in mark(db)
    assert recent(db) == []
    Driver(db).run()  # the next payday starts from the renamed mark
    assert recent(db) == [] and full(db) == []


@pytest.mark.corrupt
def test_a_marked_name_of_no_participant_is_reported(db, world: World) -> None:
    community(world)
    Driver(db).run()
    corrupt(db, "UPDATE payday.ledger_mark SET username = 'ghost' WHERE username = 'alice'")
    found = recent(db)
    assert ("ledger mark of no participant", "ghost", "a participant", "no participant; the mark holds 7.32") in found
    assert ("balance differs from ledger", "alice", "5.00", "7.32") in found  # her opening balance, unmarked


def test_a_rename_waits_for_a_mark_being_written(dsn: str, db, world: World) -> None:
    """A rename that commits while finish() writes the mark either comes before the mark
    reads the names or renames the mark's row after it: never a mark under the old name."""
    community(world)
    d = Driver(db)
    d.start(), d.charges(), d.pay_tips(), d.clear(), d.credits()
    with psycopg.connect(dsn) as finisher, psycopg.connect(dsn, autocommit=True) as app:
        finisher.execute("SELECT * FROM payday.finish()")  # marked, not committed
        renamed = threading.Thread(target=lambda: app.execute(
            "UPDATE payday.participants SET username = 'alicia' WHERE username = 'alice'"))
        renamed.start()
        time.sleep(0.3)
        assert renamed.is_alive()  # the rename trigger waits for the mark's lock
        finisher.commit()
        renamed.join(10)
    assert mark(db) == {"alicia": D("7.32"), "bob": D("0.00")}
    assert recent(db) == [] and full(db) == []


def test_mark_ledger_refuses_what_it_cannot_mark(db, world: World, tap) -> None:
    tap.throws_ok("SELECT payday.mark_ledger(NULL)", "22004")
    community(world)
    d = Driver(db)
    pd = d.start()
    tap.throws_ok(f"SELECT payday.mark_ledger({pd['id']})", "55000", "not a closed payday")
    d.charges(), d.pay_tips(), d.clear(), d.credits(), d.finish()
    tap.throws_ok(f"SELECT payday.mark_ledger({pd['id']})", "55000", "marked already")
    tap.throws_ok("SELECT payday.mark_ledger(12345)", "55000", "not a closed payday")
    tap.throws_ok("SELECT * FROM payday.check_ledger(NULL)", "22004")


def test_only_the_owner_marks_and_the_roles_check(db, world: World) -> None:
    for role in ("payday_app", "payday_runner", "payday_readonly"):
        assert value(db, "SELECT has_function_privilege(%s, 'payday.check_recent()', 'EXECUTE')", (role,))
        assert not value(db, "SELECT has_function_privilege(%s, 'payday.mark_ledger(bigint)', 'EXECUTE')", (role,))
        assert not value(db, "SELECT has_function_privilege(%s, 'payday.check_ledger(boolean)', 'EXECUTE')", (role,))
        assert value(db, "SELECT has_table_privilege(%s, 'payday.ledger_mark', 'SELECT')", (role,))
        assert not value(db, "SELECT has_table_privilege(%s, 'payday.ledger_mark', 'UPDATE')", (role,))
    community(world)
    Driver(db).run()  # the new mark table is readable as the old one was
    assert value(db, "SELECT has_table_privilege('payday_readonly', 'payday.ledger_mark', 'SELECT')")
