"""Schema 0012: payday.current_tips holds each pair's latest tip, kept by the triggers of
payday.tips whatever writes them, and the payday reads its tips from it."""

from __future__ import annotations

import threading
from datetime import timedelta

import psycopg
import pytest

from .world import BASE, INSERT_TIP, D, Driver, World, corrupt, rows, start, transfers, value

T = BASE + timedelta(days=3)
LATEST = """
    SELECT DISTINCT ON (tipper, tippee) tipper, tippee, id, amount, ctime, mtime
      FROM payday.tips ORDER BY tipper, tippee, mtime DESC, id DESC
"""


def _current(db) -> list[tuple]:
    return [tuple(r.values()) for r in rows(
        db, "SELECT tipper, tippee, tip_id, amount, ctime, mtime FROM payday.current_tips ORDER BY tipper, tippee")]


def _latest(db) -> list[tuple]:
    return [tuple(r.values()) for r in rows(db, LATEST)]


def _people(world: World, *names: str) -> None:
    for name in names:
        world.participant(name)


def test_a_later_tip_replaces_the_current_one_and_an_earlier_one_does_not(db, world: World) -> None:
    _people(world, "alice", "bob")
    world.tip("alice", "bob", "3.00", ctime=T, mtime=T + timedelta(days=2))
    world.tip("alice", "bob", "6.00", ctime=T, mtime=T + timedelta(days=1))   # written later, older
    assert [(r[0], r[1], r[3]) for r in _current(db)] == [("alice", "bob", D("3.00"))]
    world.tip("alice", "bob", "0.00", ctime=T, mtime=T + timedelta(days=3))   # stopped: still its row
    assert [(r[0], r[1], r[3]) for r in _current(db)] == [("alice", "bob", D("0.00"))]
    assert _current(db) == _latest(db)


def test_one_statement_of_many_rows_keeps_each_pairs_latest(db, world: World) -> None:
    """Equal mtimes go to the highest id, as the payday's DISTINCT ON did."""
    _people(world, "alice", "bob", "carol")
    db.execute(
        "INSERT INTO payday.tips (ctime, mtime, tipper, tippee, amount) VALUES "
        "(%(t)s, %(t)s, 'alice', 'bob', 1), (%(t)s, %(t)s, 'alice', 'bob', 2), "
        "(%(t)s, %(t)s + interval '1 hour', 'alice', 'carol', 5), (%(t)s, %(t)s, 'alice', 'carol', 4)",
        {"t": T})
    assert [(r[0], r[1], r[3]) for r in _current(db)] == [("alice", "bob", D("2.00")), ("alice", "carol", D("5.00"))]
    assert _current(db) == _latest(db)


def test_updates_and_deletes_of_the_history_are_followed(db, world: World) -> None:
    """The schema owner's edits (the web application may only insert)."""
    _people(world, "alice", "bob", "carol")
    world.tip("alice", "bob", "1.00", ctime=T, mtime=T)
    world.tip("alice", "bob", "2.00", ctime=T, mtime=T + timedelta(days=1))
    world.tip("alice", "carol", "3.00", ctime=T, mtime=T)
    db.execute("UPDATE payday.tips SET amount = 7 WHERE tippee = 'bob' AND amount = 2")
    assert _current(db) == _latest(db) and _current(db)[0][3] == D("7.00")
    db.execute("UPDATE payday.tips SET mtime = mtime + interval '5 days' WHERE tippee = 'bob' AND amount = 1")
    assert _current(db) == _latest(db) and _current(db)[0][3] == D("1.00")
    db.execute("DELETE FROM payday.tips WHERE tippee = 'bob' AND amount = 1")
    assert _current(db) == _latest(db) and _current(db)[0][3] == D("7.00")
    db.execute("DELETE FROM payday.tips WHERE tippee = 'carol'")
    assert [(r[0], r[1]) for r in _current(db)] == [("alice", "bob")]
    db.execute("TRUNCATE payday.tips")
    assert _current(db) == []


def test_a_rename_moves_the_pairs(db, world: World) -> None:
    _people(world, "alice", "bob", "carol")
    world.tip("alice", "bob", "1.00")
    world.tip("carol", "alice", "2.00")
    db.execute("UPDATE payday.participants SET username = 'alicia' WHERE username = 'alice'")
    assert [(r[0], r[1]) for r in _current(db)] == [("alicia", "bob"), ("carol", "alicia")]
    assert _current(db) == _latest(db)


def test_concurrent_tips_to_one_pair_keep_the_later_whichever_commits_first(db, world: World, dsn: str) -> None:
    _people(world, "alice", "bob")
    world.tip("alice", "bob", "1.00", ctime=T, mtime=T)
    done: list[BaseException | None] = []
    with psycopg.connect(dsn) as later, psycopg.connect(dsn, autocommit=True) as earlier:
        later.execute(INSERT_TIP, (T, T + timedelta(days=2), "alice", "bob", D("9.00")))  # not committed yet

        def write_earlier() -> None:
            try:
                earlier.execute(INSERT_TIP, (T, T + timedelta(days=1), "alice", "bob", D("5.00")))
                done.append(None)
            except BaseException as exc:  # reported by the assertion below
                done.append(exc)

        thread = threading.Thread(target=write_earlier)
        thread.start()
        thread.join(1.0)
        assert thread.is_alive(), "the second insert should wait for the first one's row of current_tips"
        later.commit()
        thread.join(10.0)
    assert done == [None]
    assert [(r[0], r[1], r[3]) for r in _current(db)] == [("alice", "bob", D("9.00"))]
    assert _current(db) == _latest(db)


def test_the_payday_pays_the_tip_current_at_its_start(db, world: World) -> None:
    """A pair changed while the payday runs keeps the tip it had at ts_start; a pair begun
    after ts_start is not paid; a pair stopped after ts_start is still paid."""
    world.participant("alice", balance="50.00")
    _people(world, "bob", "carol", "dave")
    world.tip("alice", "bob", "3.00", ctime=T)
    world.tip("alice", "dave", "4.00", ctime=T + timedelta(hours=1))
    pd = start(db)
    after = pd["ts_start"] + timedelta(seconds=1)
    world.tip("alice", "bob", "9.00", ctime=T, mtime=after)
    world.tip("alice", "carol", "5.00", ctime=after, mtime=after)
    world.tip("alice", "dave", "0.00", ctime=T + timedelta(hours=1), mtime=after)
    d = Driver(db)
    d.charges()
    d.pay_tips()
    assert transfers(db) == [("alice", "bob", D("3.00")), ("alice", "dave", D("4.00"))]
    d.clear()
    d.credits()
    d.finish()


def test_no_open_payday_no_tips(db, world: World) -> None:
    _people(world, "alice", "bob")
    world.tip("alice", "bob", "3.00")
    assert value(db, "SELECT count(*) FROM payday.payday_tips") == 0


@pytest.mark.corrupt
def test_check_reports_a_current_tip_that_is_not_the_latest_and_rebuild_mends_it(db, world: World) -> None:
    _people(world, "alice", "bob", "carol")
    world.tip("alice", "bob", "1.00", ctime=T, mtime=T)
    world.tip("alice", "bob", "2.00", ctime=T, mtime=T + timedelta(days=1))
    world.tip("alice", "carol", "3.00")
    corrupt(db, "UPDATE payday.current_tips SET amount = 1 WHERE tippee = 'bob'",
            "DELETE FROM payday.current_tips WHERE tippee = 'carol'",
            "INSERT INTO payday.current_tips VALUES ('bob', 'alice', 0, 4, now(), now())")
    found = {(r["what"], r["who"]) for r in rows(db, "SELECT * FROM payday.check()")}
    assert found == {("current tip differs from tips", "alice -> bob"),
                     ("current tip differs from tips", "alice -> carol"),
                     ("current tip differs from tips", "bob -> alice")}
    assert value(db, "SELECT count(*) FROM payday.check_recent()") == 0  # trusts the triggers
    assert value(db, "SELECT payday.rebuild_current_tips()") == 2
    assert _current(db) == _latest(db)
    assert rows(db, "SELECT * FROM payday.check()") == []


def test_the_web_application_cannot_write_current_tips(db, world: World) -> None:
    _people(world, "alice", "bob")
    for statement in ("INSERT INTO payday.current_tips VALUES ('alice', 'bob', 1, 1, now(), now())",
                      "UPDATE payday.current_tips SET amount = 0", "DELETE FROM payday.current_tips",
                      "SELECT payday.rebuild_current_tips()"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege), db.transaction():
            db.execute("SET LOCAL ROLE payday_app")
            db.execute(statement)
    with db.transaction():
        db.execute("SET LOCAL ROLE payday_app")
        world.tip("alice", "bob", "2.00")  # through the triggers, as the schema owner
    assert [(r[0], r[1], r[3]) for r in _current(db)] == [("alice", "bob", D("2.00"))]


def test_amounts_too_big_for_bigint_cents_are_summed_exactly(db, world: World) -> None:
    """The big sums add integer cents (bigint) and, for amounts of 10^13 and more, numerics:
    every sum of a payday mixes both here, and must come out to the cent."""
    huge = D("100000000000000000.02")                   # 10^17: 10^19 cents, beyond a bigint
    world.participant("alice", balance="400000000000000000.05", balanced="/v1/accounts/alice")
    world.participant("carol", balance="1.00", stripe="cus_c")
    world.participant("bob", balanced="/v1/accounts/bob")
    world.participant("eve")
    world.tip("alice", "bob", huge)
    world.tip("alice", "eve", "3.01")
    world.tip("carol", "bob", "10.01")                 # short by 9.01: charged
    d = Driver(db)
    d.start()
    assert [(r["username"], r["short"]) for r in rows(db, "SELECT * FROM payday.charges_due()")] == [
        ("carol", D("9.01"))]
    d.charges()
    got = d.pay_tips()
    assert got["transfer_volume"] == huge + D("3.01") + D("10.01")
    assert value(db, "SELECT pending FROM payday.participants WHERE username = 'bob'") == huge + D("10.01")
    d.clear()
    # alice keeps what her current tips will need next week: her balance less two weeks of
    # them is paid out.
    due = {r["username"]: r for r in rows(db, "SELECT * FROM payday.credits_due()")}
    assert due["alice"]["obligations"] == huge + D("3.01")
    assert due["alice"]["payout"] == D("400000000000000000.05") - 2 * (huge + D("3.01"))
    assert due["bob"]["payout"] == huge + D("10.01")
    d.credits()
    d.finish()
