"""The pgTAP-style helpers pass when they should and fail when they should."""

from __future__ import annotations

from decimal import Decimal

import psycopg
import pytest

from tap import Tap

INSERT_ALICE = "INSERT INTO payday.participants (username, balance) VALUES ('alice', 1.50)"


def test_ok(tap: Tap) -> None:
    tap.ok("SELECT true")
    tap.ok(True)
    for bad in ("SELECT false", "SELECT NULL::boolean", "SELECT 1"):
        with pytest.raises(AssertionError, match="not ok"):
            tap.ok(bad, "must fail")
    with pytest.raises(AssertionError):
        tap.ok(False)
    with pytest.raises(AssertionError, match="one row of one column"):
        tap.ok("SELECT true, true")


def test_is_and_isnt(tap: Tap) -> None:
    tap.lives_ok(INSERT_ALICE)
    tap.is_("SELECT balance FROM payday.participants WHERE username = %s", Decimal("1.50"), params=["alice"])
    tap.is_("SELECT pending FROM payday.participants", None)
    tap.isnt("SELECT balance FROM payday.participants", Decimal("0"))
    with pytest.raises(AssertionError, match="expected: Decimal"):
        tap.is_("SELECT balance FROM payday.participants", Decimal("1.51"))
    with pytest.raises(AssertionError):
        tap.is_("SELECT pending FROM payday.participants", Decimal("0"))
    with pytest.raises(AssertionError):
        tap.isnt("SELECT balance FROM payday.participants", Decimal("1.5"))
    with pytest.raises(AssertionError):
        tap.isnt("SELECT pending FROM payday.participants", None)
    with pytest.raises(TypeError, match="never float"):
        tap.is_("SELECT balance FROM payday.participants", 1.5)


def test_lives_ok(tap: Tap) -> None:
    assert tap.lives_ok("SELECT 1, 'x'") == [(1, "x")]
    tap.lives_ok(INSERT_ALICE)
    tap.is_("SELECT count(*) FROM payday.participants", 1, "lives_ok keeps its effects")
    with pytest.raises(AssertionError, match="died: 23505"):
        tap.lives_ok(INSERT_ALICE)


def test_throws_ok(tap: Tap) -> None:
    err = tap.throws_ok("SELECT 1/0", "22012", "division by zero")
    assert isinstance(err, psycopg.errors.DivisionByZero)
    tap.lives_ok(INSERT_ALICE)
    # A failing multi-statement query leaves nothing behind.
    tap.throws_ok("UPDATE payday.participants SET balance = 5; SELECT 1/0", "22012")
    tap.is_("SELECT balance FROM payday.participants", Decimal("1.50"))
    tap.throws_ok("UPDATE payday.participants SET balance = -1", "23514", r"balance_check")


def test_throws_ok_fails(tap: Tap) -> None:
    with pytest.raises(AssertionError, match="did not throw"):
        tap.throws_ok(INSERT_ALICE, "23505")
    tap.is_("SELECT count(*) FROM payday.participants", 0, "a statement that did not throw is undone")
    with pytest.raises(AssertionError, match="expected SQLSTATE 22004, got 22012"):
        tap.throws_ok("SELECT 1/0", "22004")
    with pytest.raises(AssertionError, match="does not match"):
        tap.throws_ok("SELECT 1/0", "22012", "^overflow")


def test_throws_ok_inside_a_transaction(tap: Tap, db: psycopg.Connection) -> None:
    with db.transaction():
        tap.lives_ok(INSERT_ALICE)
        tap.throws_ok(INSERT_ALICE, "23505")
        tap.is_("SELECT count(*) FROM payday.participants", 1, "the outer transaction survives")
    tap.is_("SELECT count(*) FROM payday.participants", 1)


def test_fingerprint_sees_changes(tap: Tap) -> None:
    before = tap.fingerprint()
    assert "payday.participants" in before and "payday.exchanges" in before
    tap.lives_ok(INSERT_ALICE)
    after = tap.fingerprint()
    assert [t for t in before if before[t] != after[t]] == ["payday.participants"]


def test_results_eq(tap: Tap) -> None:
    tap.lives_ok(INSERT_ALICE)
    tap.lives_ok("INSERT INTO payday.participants (username) VALUES ('bob')")
    query = "SELECT username, balance FROM payday.participants ORDER BY username"
    tap.results_eq(query, [("alice", Decimal("1.50")), ("bob", Decimal("0.00"))])
    tap.results_eq(query, [["alice", Decimal("1.5")], ["bob", Decimal("0")]])
    tap.results_eq(query, "VALUES ('alice', 1.50), ('bob', 0)")
    with pytest.raises(AssertionError, match="differ at row 2"):
        tap.results_eq(query, [("alice", Decimal("1.50")), ("bob", Decimal("1.00"))])
    with pytest.raises(AssertionError, match="got 2 rows, expected 1"):
        tap.results_eq(query, [("alice", Decimal("1.50"))])
    with pytest.raises(AssertionError, match="differ at row 1"):
        tap.results_eq(query, "VALUES ('bob', 0), ('alice', 1.50)")
    with pytest.raises(TypeError):
        tap.results_eq(query, [("alice", 1.5), ("bob", 0.0)])
