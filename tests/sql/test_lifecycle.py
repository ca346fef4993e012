"""SPEC §4 steps 1, 2, 7, 9: start/resume, pending, clear, finish; the phase machine."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from .world import (CHARGE_ERROR, D, Driver, World, assert_invariants, balance, corrupt, counters, pending, row,
                    rows, start, value)

OPEN = "1970-01-01 00:00:00+00"


def test_start_opens_a_payday_with_the_sentinel(db, tap) -> None:
    tap.is_("SELECT count(*) FROM payday.paydays", 0)
    tap.is_("SELECT id IS NULL FROM payday.open_payday()", True, "no payday open yet")
    pd = start(db)
    assert pd["phase"] == "payin"
    tap.is_("SELECT ts_end = %s::timestamptz FROM payday.paydays", True, params=[OPEN])
    tap.is_("SELECT ts_end = payday.open_sentinel() FROM payday.paydays", True)
    tap.is_("SELECT id FROM payday.open_payday()", pd["id"])
    tap.ok("SELECT ts_start <= now() FROM payday.paydays")
    assert all(v == 0 for v in counters(db).values())


def test_second_start_resumes_the_open_payday(db, tap) -> None:
    first = start(db)
    second = start(db)
    assert second["id"] == first["id"]
    assert second["ts_start"] == first["ts_start"], "ts_start is fixed for the payday's life"
    tap.is_("SELECT count(*) FROM payday.paydays", 1)


def test_a_second_open_payday_is_impossible(db, tap) -> None:
    start(db)
    tap.throws_ok("INSERT INTO payday.paydays DEFAULT VALUES", "23505")


@pytest.mark.parametrize("phase", ["clear", "payout"])
def test_start_resumes_in_any_phase(db, world: World, tap, phase: str) -> None:
    world.participant("alice", balance="10.00")
    world.participant("bob")
    world.tip("alice", "bob", "3.00")
    d = Driver(db)
    pd = d.start()
    d.pay_tips()
    if phase == "payout":
        d.clear()
    again = start(db)
    assert (again["id"], again["phase"]) == (pd["id"], phase)
    # Resuming after tips were paid must not re-open pending accounting.
    tap.is_("SELECT count(*) FROM payday.participants WHERE pending IS NOT NULL",
            0 if phase == "payout" else 2)
    if phase == "clear":
        d.clear()
    d.finish()


def test_start_after_finish_opens_a_new_payday(db, tap) -> None:
    d = Driver(db)
    first = d.run()
    assert first["phase"] == "done" and first["ts_end"] >= first["ts_start"]
    tap.is_("SELECT id IS NULL FROM payday.open_payday()", True)
    second = start(db)
    assert second["id"] == first["id"] + 1
    assert second["ts_start"] >= first["ts_end"]
    d.pay_tips(), d.clear(), d.finish()
    tap.is_("SELECT count(*) FROM payday.paydays WHERE phase = 'done'", 2)


def test_pending_is_zeroed_only_for_participants_claimed_before_ts_start(db, world: World, tap) -> None:
    world.participant("claimed")
    world.participant("suspicious", suspicious=True)     # pending too: the reference zeroes by claim only
    world.participant("unreviewed", suspicious=None)
    world.participant("stub", claimed=None)
    world.participant("future", claimed=value(db, "SELECT now() + interval '1 day'"))
    world.participant("later", claimed=None)
    pd = start(db)
    world.claim("later", pd["ts_start"] + timedelta(seconds=1))
    tap.results_eq("SELECT username, pending FROM payday.participants ORDER BY username", [
        ("claimed", Decimal("0.00")), ("future", None), ("later", None), ("stub", None),
        ("suspicious", Decimal("0.00")), ("unreviewed", Decimal("0.00"))])
    # A second start() (resume) changes nothing for the late claimer either.
    start(db)
    assert pending(db, "later") is None and pending(db, "future") is None
    Driver(db).pay_tips()
    Driver(db).clear()
    Driver(db).finish()


def test_start_keeps_existing_pending(db, world: World, tap) -> None:
    world.participant("alice", balance="5.00")
    world.participant("bob")
    start(db)
    value(db, "SELECT payday.transfer('alice', 'bob', 2.00)")
    assert pending(db, "bob") == D("2.00")
    start(db)  # resume: only NULL pendings are zeroed
    assert pending(db, "bob") == D("2.00")
    d = Driver(db)
    d.pay_tips(), d.clear()
    assert (balance(db, "alice"), balance(db, "bob"), pending(db, "bob")) == (D("3.00"), D("2.00"), None)
    d.finish()


def test_clear_pending_moves_pending_to_balance(db, world: World, tap) -> None:
    world.participant("alice", balance="10.00")
    world.participant("bob", balance="1.00")
    world.participant("carol")
    world.tip("alice", "bob", "3.00")
    world.tip("alice", "carol", "2.00")
    d = Driver(db)
    d.start()
    d.pay_tips()
    tap.results_eq("SELECT username, balance, pending FROM payday.participants ORDER BY 1", [
        ("alice", D("5.00"), D("0.00")), ("bob", D("1.00"), D("3.00")), ("carol", D("0.00"), D("2.00"))])
    tap.is_("SELECT payday.clear_pending()", 3, "returns how many rows it cleared")
    tap.results_eq("SELECT username, balance, pending FROM payday.participants ORDER BY 1", [
        ("alice", D("5.00"), None), ("bob", D("4.00"), None), ("carol", D("2.00"), None)])
    tap.is_("SELECT phase FROM payday.open_payday()", "payout")
    assert_invariants(db)
    d.finish()


def test_finish_closes_the_payday(db, tap) -> None:
    d = Driver(db)
    d.start(), d.pay_tips(), d.clear()
    done = d.finish()
    assert done["phase"] == "done"
    tap.is_("SELECT ts_end <> payday.open_sentinel() AND ts_end >= ts_start FROM payday.paydays", True)
    tap.is_("SELECT id IS NULL FROM payday.open_payday()", True)
    tap.throws_ok("SELECT payday.finish()", "55000", "no payday is open")


def test_finish_refuses_while_a_credit_is_pre(db, world: World, tap) -> None:
    world.participant("alice", balance="20.00", balanced="/v1/accounts/alice")
    d = Driver(db)
    d.start(), d.pay_tips(), d.clear()
    xid = value(db, "SELECT payday.credit_intent('alice')")
    tap.throws_ok("SELECT payday.finish()", "55000", "pre")
    value(db, "SELECT (payday.credit_outcome(%s, true)).id", (xid,))
    d.finish()
    assert balance(db, "alice") == 0


@pytest.mark.corrupt
def test_finish_refuses_on_an_invariant_violation(db, world: World, tap) -> None:
    world.participant("alice", balance="20.00")
    d = Driver(db)
    d.start(), d.pay_tips(), d.clear()
    db.execute("UPDATE payday.participants SET balance = 25.00 WHERE username = 'alice'")
    err = tap.throws_ok("SELECT payday.finish()", "PD004", "balance differs from ledger alice")
    assert "expected 20.00, actual 25.00" in err.diag.message_primary
    tap.is_("SELECT phase FROM payday.open_payday()", "payout", "still open")
    # Repaired, it closes.
    db.execute("UPDATE payday.participants SET balance = 20.00 WHERE username = 'alice'")
    assert d.finish()["phase"] == "done"


@pytest.mark.corrupt
def test_finish_refuses_on_a_corrupt_counter(db, world: World, tap) -> None:
    d = Driver(db)
    d.start(), d.pay_tips(), d.clear()
    corrupt(db, "UPDATE payday.paydays SET ncharges = 3")
    tap.throws_ok("SELECT payday.finish()", "PD004", "payday counter ncharges")


# Every phase-bound function in every wrong phase: tests/sql/test_bad_input.py::test_wrong_phase.
PHASE_BOUND = [
    "SELECT * FROM payday.pay_tips()",
    "SELECT payday.clear_pending()",
    "SELECT * FROM payday.finish()",
    "SELECT * FROM payday.charges_due()",
    "SELECT payday.charge_intent('alice')",
    "SELECT * FROM payday.charge_intents()",
    "SELECT * FROM payday.credits_due()",
    "SELECT payday.credit_intent('bob')",
]


def test_phase_errors_after_the_payday_is_done(db, tap) -> None:
    Driver(db).run()
    for call in PHASE_BOUND:
        tap.throws_ok(call, "55000", "no payday is open")


def test_pay_tips_refuses_while_a_charge_is_pre(db, world: World, tap) -> None:
    world.participant("alice", balance="1.00", stripe="cus_alice")
    world.participant("bob")
    world.tip("alice", "bob", "5.00")
    start(db)
    xid = value(db, "SELECT payday.charge_intent('alice')")
    tap.throws_ok("SELECT * FROM payday.pay_tips()", "55000", "pre")
    tap.results_eq("SELECT id, status FROM payday.pending_exchanges()", [(xid, "pre")])
    value(db, "SELECT (payday.charge_outcome(%s, false, 'card declined')).id", (xid,))
    tap.results_eq("SELECT id FROM payday.pending_exchanges()", [])
    Driver(db).pay_tips()
    tap.is_("SELECT phase FROM payday.open_payday()", "clear")


def test_pay_tips_runs_once(db, world: World, tap) -> None:
    world.participant("alice", balance="10.00")
    world.participant("bob")
    world.tip("alice", "bob", "3.00")
    d = Driver(db)
    d.start()
    assert d.pay_tips()["ntips"] == 1
    tap.throws_ok("SELECT * FROM payday.pay_tips()", "55000", "phase clear")
    d.clear()
    tap.throws_ok("SELECT payday.clear_pending()", "55000", "phase payout")
    d.finish()
    assert (balance(db, "alice"), balance(db, "bob")) == (D("7.00"), D("3.00"))


def test_open_payday_and_pending_exchanges_outside_a_payday(db, tap) -> None:
    tap.is_("SELECT p IS NULL FROM payday.open_payday() p", True, "a row of NULLs")
    tap.results_eq("SELECT * FROM payday.pending_exchanges()", [])
    tap.results_eq("SELECT * FROM payday.check()", [])


def test_a_payday_with_nobody_in_it(db, tap) -> None:
    done = Driver(db).run()
    assert done["phase"] == "done"
    assert all(v == 0 for v in counters(db).values())


def test_smoke_payday_counters(db, world: World, tap) -> None:
    """A small community end to end, with every counter checked."""
    world.participant("alice", balance="0.00", stripe="cus_alice")          # charged 9.32
    world.participant("bob", balance="30.00", balanced="/v1/accounts/bob")  # pays out
    world.participant("carol", balance="2.00", balanced="/v1/accounts/fail-carol")  # charge fails
    world.participant("dan", balance="1.00")                                 # short, no funding
    world.tip("alice", "bob", "5.00")
    world.tip("carol", "bob", "1.00")
    world.tip("carol", "alice", "3.00")
    world.tip("dan", "bob", "2.00")
    pd = Driver(db).run()
    c = counters(db, pd["id"])
    assert c == dict(nparticipants=4, ntippers=2, ntips=2, ntransfers=2, transfer_volume=D("6.00"),
                     ncc_failing=1, ncc_missing=1, ncharges=1, charge_volume=D("10.00"),
                     charge_fees_volume=D("0.68"), nachs=1, ach_volume=D("-35.70"), ach_fees_volume=D("0.30"),
                     nach_failing=0)
    tap.results_eq("SELECT username, balance, last_bill_result, last_ach_result FROM payday.participants"
                   " ORDER BY 1", [
                       ("alice", D("4.32"), "", None),
                       ("bob", D("0.00"), None, ""),
                       ("carol", D("1.00"), CHARGE_ERROR, None),
                       ("dan", D("1.00"), None, None)])
    tap.is_("SELECT count(*) FROM payday.transfers WHERE payday_id = %s AND context = 'tip'", 2,
            params=[pd["id"]])
    assert row(db, "SELECT idempotency_key FROM payday.exchanges WHERE participant = 'alice'") == {
        "idempotency_key": f"payday-{pd['id']}-exchange-1"}
    assert rows(db, "SELECT * FROM payday.check()") == []
