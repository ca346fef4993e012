"""Bad input, tabled: every function rejects NULL, negative, zero, NaN, infinite, over-range
and sub-cent amounts, unknown usernames, self-transfers, unknown or wrong-state exchange ids
and calls in the wrong phase with its documented SQLSTATE (never XX000), changing nothing.

Each phase has one database, built once for the module: every case runs against it through
``tap.throws_ok`` (which fails if any payday table changed), and the fixture checks at the end
that the whole database is still exactly as built, so a case that leaked a change would also
break the cases after it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from tap import Tap

from .world import Driver, World, rows, snapshot, start, value


@dataclass
class PhaseDB:
    tap: Tap
    ids: dict[str, int]
    before: dict[str, Any]


def _build(db: psycopg.Connection, phase: str) -> dict[str, int]:
    """none: no payday ever opened. payin: a payday in phase payin with a succeeded, a failed
    and a pre charge. clear: tips paid, pending not cleared. payout: a payday in phase payout
    with succeeded and failed charges and a succeeded, a failed and a pre credit."""
    w = World(db)
    w.participant("alice", stripe="cus_alice")
    w.participant("carol", stripe="cus_carol")
    w.participant("dave", stripe="cus_dave")
    w.participant("eve")
    w.participant("bob", balanced="/v1/accounts/bob")
    w.participant("frank", balance="50.00", balanced="/v1/accounts/frank")
    w.participant("gina", balance="50.00", balanced="/v1/accounts/gina")
    w.participant("stub", claimed=None)
    for who in ["alice", "carol", "dave", "eve"]:
        w.tip(who, "bob", "5.00")
    ids: dict[str, int] = {}
    if phase == "none":
        return ids
    start(db)
    outcome = "SELECT payday.charge_outcome(%s, %s, %s)"
    ids["charge_ok"] = value(db, "SELECT payday.charge_intent('alice')")
    db.execute(outcome, (ids["charge_ok"], True, None))
    ids["charge_failed"] = value(db, "SELECT payday.charge_intent('carol')")
    db.execute(outcome, (ids["charge_failed"], False, "card declined"))
    ids["charge_pre"] = value(db, "SELECT payday.charge_intent('dave')")
    if phase == "payin":
        return ids
    db.execute(outcome, (ids["charge_pre"], True, None))
    ids["charge_ok2"] = ids.pop("charge_pre")
    d = Driver(db)
    d.pay_tips()
    if phase == "clear":
        return ids
    d.clear()
    outcome = "SELECT payday.credit_outcome(%s, %s, %s)"
    ids["credit_ok"] = value(db, "SELECT payday.credit_intent('frank')")
    db.execute(outcome, (ids["credit_ok"], True, None))
    ids["credit_failed"] = value(db, "SELECT payday.credit_intent('gina')")
    db.execute(outcome, (ids["credit_failed"], False, "account closed"))
    ids["credit_pre"] = value(db, "SELECT payday.credit_intent('bob')")
    return ids


def _phase_db(phase: str) -> Callable[..., Iterator[PhaseDB]]:
    @pytest.fixture(scope="module")
    def fixture(make_db: Callable[[], AbstractContextManager[str]]) -> Iterator[PhaseDB]:
        with make_db() as dsn, psycopg.connect(dsn, autocommit=True) as conn:
            ids = _build(conn, phase)
            before = snapshot(conn)
            yield PhaseDB(Tap(conn), ids, before)
            assert snapshot(conn) == before, f"the {phase} database changed"
            assert rows(conn, "SELECT * FROM payday.check()") == []
    return fixture


none_db = _phase_db("none")
payin_db = _phase_db("payin")
clear_db = _phase_db("clear")
payout_db = _phase_db("payout")
PHASES = ["none", "payin", "clear", "payout"]

# Money arguments: (literal, SQLSTATE).
BAD_AMOUNTS = [
    ("NULL", "22004"),
    ("-1", "22023"),
    ("-0.01", "22023"),
    ("0", "22023"),
    ("0.00", "22023"),
    ("'NaN'", "22023"),
    ("'Infinity'", "22023"),
    ("'-Infinity'", "22023"),
    ("1e40", "22003"),
    ("1e33", "22003"),
    ("-1e40", "22023"),
    ("0.001", "22023"),
    ("10.005", "22023"),
    ("1e-10", "22023"),
]
AMOUNT_FUNCTIONS = [
    "SELECT * FROM payday.upcharge({})",
    "SELECT * FROM payday.skim_credit({})",
    "SELECT payday.transfer('frank', 'bob', {})",
    "SELECT payday.require_amount({}, 'amount')",
]


def _cases_amounts() -> list[Any]:
    return [pytest.param(fn.format(f"{lit}::numeric" if lit != "NULL" else "NULL::numeric"), state,
                         id=f"{fn.split('payday.')[1].split('(')[0]}({lit})")
            for fn in AMOUNT_FUNCTIONS for lit, state in BAD_AMOUNTS]


@pytest.mark.parametrize("phase", PHASES)
@pytest.mark.parametrize("sql, sqlstate", _cases_amounts())
def test_bad_amounts(request: pytest.FixtureRequest, phase: str, sql: str, sqlstate: str) -> None:
    p: PhaseDB = request.getfixturevalue(f"{phase}_db")
    err = p.tap.throws_ok(sql, sqlstate)
    assert err.diag.message_primary


# Cases that hold in every phase: (SQL, SQLSTATE, message pattern).
ANY_PHASE = [
    ("SELECT payday.transfer(NULL, 'bob', 1)", "22004", "must not be NULL"),
    ("SELECT payday.transfer('frank', NULL, 1)", "22004", "must not be NULL"),
    ("SELECT payday.transfer(NULL, NULL, 1)", "22004", "must not be NULL"),
    ("SELECT payday.transfer('nobody', 'bob', 1)", "P0002", 'unknown tipper "nobody"'),
    ("SELECT payday.transfer('frank', 'nobody', 1)", "P0002", 'unknown tippee "nobody"'),
    ("SELECT payday.transfer('FRANK', 'bob', 1)", "P0002", "unknown"),
    ("SELECT payday.transfer('', 'bob', 1)", "P0002", "unknown"),
    ("SELECT payday.transfer('frank', 'frank', 1)", "23514", "themselves"),
    ("SELECT payday.transfer('stub', 'frank', 1)", "PD001", "cannot transfer"),
    ("SELECT payday.transfer('frank', 'bob', 1000000)", "PD001", "cannot transfer"),
    ("SELECT payday.transfer('frank', 'bob', 50.01)", "PD001", "cannot transfer"),
    ("SELECT payday.charge_outcome(NULL, true)", "22004", "NULL"),
    ("SELECT payday.charge_outcome(0, true)", "P0002", "unknown exchange id 0"),
    ("SELECT payday.charge_outcome(-1, true)", "P0002", "unknown exchange id -1"),
    ("SELECT payday.charge_outcome(999999, true)", "P0002", "unknown exchange id 999999"),
    ("SELECT payday.credit_outcome(NULL, false, 'x')", "22004", "NULL"),
    ("SELECT payday.credit_outcome(0, true)", "P0002", "unknown exchange id 0"),
    ("SELECT payday.credit_outcome(999999, false, 'x')", "P0002", "unknown exchange id 999999"),
    ("SELECT payday.record_outcomes(NULL, ARRAY[true])", "22004", "NULL"),
    ("SELECT payday.record_outcomes(ARRAY[1]::bigint[], NULL)", "22004", "NULL"),
    ("SELECT payday.record_outcomes(ARRAY[NULL]::bigint[], ARRAY[true])", "22004", "NULL"),
    ("SELECT payday.record_outcomes(ARRAY[1, 2]::bigint[], ARRAY[true])", "22023", "same length"),
    ("SELECT payday.record_outcomes(ARRAY[1]::bigint[], ARRAY[true], ARRAY[NULL, NULL]::text[])", "22023",
     "same length"),
    ("SELECT payday.record_outcomes(ARRAY[1]::bigint[], ARRAY[true], NULL, ARRAY['a', 'b'])", "22023",
     "same length"),
    ("SELECT payday.record_outcomes(ARRAY[999999]::bigint[], ARRAY[true])", "P0002", "unknown exchange id 999999"),
    ("SELECT payday.record_outcomes(ARRAY[999999]::bigint[], ARRAY[false])", "22023", "needs its error text"),
    ("SELECT payday.record_outcomes(ARRAY[999999]::bigint[], ARRAY[true], ARRAY['boom'])", "22023",
     "takes no error text"),
    ("SELECT payday.record_outcomes(ARRAY[999999, 999999]::bigint[], ARRAY[true, true])", "22023",
     "more than once"),
    ("SELECT * FROM payday.charge_intents('paypal')", None, "unknown processor|phase|no payday"),
    # The card total of the largest numeric(35,2) does not fit numeric(35,2) itself.
    ("SELECT * FROM payday.upcharge(999999999999999999999999999999999.99)", "22003", "overflow"),
    ("SELECT payday.require_participant(NULL)", "22004", "must not be NULL"),
    ("SELECT payday.require_participant('nobody')", "P0002", "unknown participant"),
    ("SELECT payday.require_exchange(NULL, 'charge')", "22004", "must not be NULL"),
    ("SELECT payday.require_exchange(999999, NULL)", "P0002", "unknown exchange"),
    ("SELECT payday.require_processor('paypal')", "22023", "unknown processor"),
    ("SELECT payday.require_processor('')", "22023", "unknown processor"),
    ("SELECT payday.require_open_payday(false, VARIADIC ARRAY[]::text[])", "22004", "at least one phase"),
    ("SELECT payday.require_open_payday(false, VARIADIC NULL::text[])", "22004", "at least one phase"),
    ("SELECT payday.require_open_payday(false, 'done')", "55000", "phase|no payday"),
    ("SELECT payday.require_tip_transfers(NULL, true, 'x')", "22004", "x: payday_id must be a payday id"),
    ("SELECT payday.require_tip_transfers(0, NULL, 'x')", "22023", "at least 1"),
    ("SELECT payday.require_tip_transfers(999999, false, 'x')", "42P01", "no table payday.transfers_payday_999999"),
]


@pytest.mark.parametrize("phase", PHASES)
@pytest.mark.parametrize("sql, sqlstate, pattern", ANY_PHASE, ids=[c[0].removeprefix("SELECT ") for c in ANY_PHASE])
def test_bad_input_in_any_phase(request: pytest.FixtureRequest, phase: str, sql: str, sqlstate: str | None,
                                pattern: str) -> None:
    p: PhaseDB = request.getfixturevalue(f"{phase}_db")
    if sqlstate is None:  # depends on the phase: the processor is checked after the phase
        sqlstate = "22023" if phase == "payin" else "55000"
    p.tap.throws_ok(sql, sqlstate, pattern)


# Every phase-bound function, refused (55000, with a hint naming the next step) in every
# phase it does not belong to: (SQL, phases where refused).
WRONG_PHASE = [
    ("SELECT * FROM payday.pay_tips()", ["none", "clear", "payout"]),
    ("SELECT payday.clear_pending()", ["none", "payin", "payout"]),
    ("SELECT * FROM payday.finish()", ["none", "payin", "clear"]),
    ("SELECT * FROM payday.charges_due()", ["none", "clear", "payout"]),
    ("SELECT payday.charge_intent('alice')", ["none", "clear", "payout"]),
    ("SELECT payday.charge_intent(NULL)", ["none", "clear", "payout"]),
    ("SELECT payday.charge_intent('nobody')", ["none", "clear", "payout"]),
    ("SELECT payday.charge_intent('alice', 'paypal')", ["none", "clear", "payout"]),
    ("SELECT * FROM payday.charge_intents()", ["none", "clear", "payout"]),
    ("SELECT * FROM payday.credits_due()", ["none", "payin", "clear"]),
    ("SELECT payday.credit_intent('frank')", ["none", "payin", "clear"]),
    ("SELECT payday.credit_intent(NULL)", ["none", "payin", "clear"]),
    ("SELECT payday.credit_intent('nobody')", ["none", "payin", "clear"]),
    ("SELECT * FROM payday.credit_intents(ARRAY['frank'])", ["none", "payin", "clear"]),
    ("SELECT * FROM payday.credit_intents(NULL)", ["none", "payin", "clear"]),
    ("SELECT * FROM payday.credit_intents(ARRAY['nobody'], 'paypal')", ["none", "payin", "clear"]),
]


@pytest.mark.parametrize("sql, phase", [(sql, ph) for sql, phases in WRONG_PHASE for ph in phases])
def test_wrong_phase(request: pytest.FixtureRequest, sql: str, phase: str) -> None:
    p: PhaseDB = request.getfixturevalue(f"{phase}_db")
    err = p.tap.throws_ok(sql, "55000", "no payday is open" if phase == "none" else f"is in phase {phase}")
    assert err.diag.message_hint, "the error names the next step"


# Phase-specific cases; {name} is an exchange id of the phase's database.
PAYIN = [
    ("SELECT payday.charge_intent(NULL)", "22004", "must not be NULL"),
    ("SELECT payday.charge_intent('nobody')", "P0002", 'unknown participant "nobody"'),
    ("SELECT payday.charge_intent('alice', 'paypal')", "22023", "unknown processor"),
    ("SELECT payday.charge_intent('bob', '')", "22023", "unknown processor"),
    ("SELECT payday.charge_intent('alice')", "PD003", "already charged"),
    ("SELECT payday.charge_intent('carol')", "PD003", "already charged"),
    ("SELECT payday.charge_intent('eve')", "PD003", "no funding source"),
    ("SELECT payday.charge_intent('bob')", "PD003", "balance covers"),
    ("SELECT payday.charge_intent('stub')", "PD003", "not claimed"),
    ("SELECT payday.charge_outcome({charge_pre}, NULL)", "22004", "NULL"),
    ("SELECT payday.charge_outcome({charge_pre}, false)", "22023", "needs its error text"),
    ("SELECT payday.charge_outcome({charge_pre}, false, '')", "22023", "needs its error text"),
    ("SELECT payday.charge_outcome({charge_pre}, false, '   ')", "22023", "needs its error text"),
    ("SELECT payday.charge_outcome({charge_pre}, true, 'but it failed')", "22023", "takes no error text"),
    ("SELECT payday.charge_outcome({charge_ok}, false, 'declined')", "PD002", "already recorded as succeeded"),
    ("SELECT payday.charge_outcome({charge_failed}, true)", "PD002", "already recorded as failed"),
    ("SELECT payday.credit_outcome({charge_pre}, true)", "55000", "is a charge, not a credit"),
    ("SELECT payday.credit_outcome({charge_ok}, true)", "55000", "is a charge, not a credit"),
    # A batch is all or nothing: one bad element and the good ones are not applied either.
    ("SELECT payday.record_outcomes(ARRAY[{charge_pre}, {charge_ok}]::bigint[], ARRAY[true, false],"
     " ARRAY[NULL, 'x'])", "PD002", "already recorded"),
    ("SELECT payday.record_outcomes(ARRAY[{charge_pre}, 999999]::bigint[], ARRAY[true, true])", "P0002",
     "unknown exchange id 999999"),
    ("SELECT payday.record_outcomes(ARRAY[{charge_pre}, {charge_pre}]::bigint[], ARRAY[true, true])", "22023",
     "more than once"),
    ("SELECT payday.record_outcomes(ARRAY[{charge_pre}, {charge_failed}]::bigint[], ARRAY[false, true],"
     " ARRAY[NULL, NULL])", "22023", "needs its error text"),
    ("SELECT payday.record_outcomes(ARRAY[{charge_pre}]::bigint[], ARRAY[NULL]::boolean[])", "22004", "NULL"),
    ("SELECT * FROM payday.pay_tips()", "55000", "pre"),
]

PAYOUT = [
    ("SELECT payday.credit_intent(NULL)", "22004", "must not be NULL"),
    ("SELECT payday.credit_intent('nobody')", "P0002", 'unknown participant "nobody"'),
    ("SELECT payday.credit_intent('frank', 'paypal')", "22023", "unknown processor"),
    ("SELECT payday.credit_intent('frank')", "PD003", "already paid out"),
    ("SELECT payday.credit_intent('gina')", "PD003", "already paid out"),
    ("SELECT payday.credit_intent('alice')", "PD003", "no balanced_account_uri"),
    ("SELECT payday.credit_intent('eve')", "PD003", "no balanced_account_uri"),
    ("SELECT payday.credit_intent('stub')", "PD003", "not claimed"),
    # The batch form is all or nothing: one bad name and nobody gets an intent.
    ("SELECT * FROM payday.credit_intents(NULL)", "22004", "without NULL"),
    ("SELECT * FROM payday.credit_intents(ARRAY[NULL]::text[])", "22004", "without NULL"),
    ("SELECT * FROM payday.credit_intents(ARRAY['bob', NULL])", "22004", "without NULL"),
    ("SELECT * FROM payday.credit_intents(ARRAY['bob', 'nobody', 'FRANK', ''])", "P0002",
     "^no participant named '', 'FRANK', 'nobody'$"),
    ("SELECT * FROM payday.credit_intents(ARRAY['bob'], 'paypal')", "22023", "unknown processor"),
    ("SELECT * FROM payday.credit_intents(ARRAY['bob'], '')", "22023", "unknown processor"),
    ("SELECT * FROM payday.credit_intents(ARRAY['frank'])", "PD003",
     r"already paid out in payday 1: frank \(exchange"),
    ("SELECT * FROM payday.credit_intents(ARRAY['bob', 'alice', 'gina', 'frank'])", "PD003",
     r"frank \(exchange \d+, succeeded\), gina \(exchange \d+, failed\)$"),
    ("SELECT payday.credit_outcome({credit_pre}, NULL)", "22004", "NULL"),
    ("SELECT payday.credit_outcome({credit_pre}, false)", "22023", "needs its error text"),
    ("SELECT payday.credit_outcome({credit_pre}, false, '')", "22023", "needs its error text"),
    ("SELECT payday.credit_outcome({credit_pre}, true, 'but it failed')", "22023", "takes no error text"),
    ("SELECT payday.credit_outcome({credit_ok}, false, 'bounced')", "PD002", "already recorded as succeeded"),
    ("SELECT payday.credit_outcome({credit_failed}, true)", "PD002", "already recorded as failed"),
    ("SELECT payday.charge_outcome({credit_pre}, true)", "55000", "is a credit, not a charge"),
    ("SELECT payday.charge_outcome({credit_failed}, false, 'x')", "55000", "is a credit, not a charge"),
    ("SELECT payday.credit_outcome({charge_ok}, true)", "55000", "is a charge, not a credit"),
    ("SELECT payday.charge_outcome({charge_ok}, false, 'declined')", "PD002", "already recorded"),
    ("SELECT payday.charge_outcome({charge_failed}, true)", "PD002", "already recorded"),
    ("SELECT payday.record_outcomes(ARRAY[{credit_pre}, {credit_ok}]::bigint[], ARRAY[true, false],"
     " ARRAY[NULL, 'x'])", "PD002", "already recorded"),
    ("SELECT payday.record_outcomes(ARRAY[{credit_pre}, {charge_failed}]::bigint[], ARRAY[true, true])", "PD002",
     "already recorded as failed"),
    ("SELECT payday.record_outcomes(ARRAY[{credit_pre}, 0]::bigint[], ARRAY[true, true])", "P0002",
     "unknown exchange id 0"),
    ("SELECT * FROM payday.finish()", "55000", "pre"),
    ("SELECT payday.transfer('bob', 'frank', 0.01)", "PD001", "reserved"),
]


@pytest.mark.parametrize("sql, sqlstate, pattern", PAYIN, ids=[c[0].removeprefix("SELECT ") for c in PAYIN])
def test_bad_input_in_payin(payin_db: PhaseDB, sql: str, sqlstate: str, pattern: str) -> None:
    payin_db.tap.throws_ok(sql.format(**payin_db.ids), sqlstate, pattern)


@pytest.mark.parametrize("sql, sqlstate, pattern", PAYOUT, ids=[c[0].removeprefix("SELECT ") for c in PAYOUT])
def test_bad_input_in_payout(payout_db: PhaseDB, sql: str, sqlstate: str, pattern: str) -> None:
    payout_db.tap.throws_ok(sql.format(**payout_db.ids), sqlstate, pattern)


def test_credit_intents_of_nobody_new_changes_nothing(payout_db: PhaseDB) -> None:
    """Not due (alice, eve, stub), or already pre (bob, twice): no error, no new row, bob's pre
    credit returned. The fixture checks afterwards that the database is exactly as built."""
    before = payout_db.tap.fingerprint()
    names = ["alice", "bob", "eve", "stub", "bob"]
    got = payout_db.tap.rows("SELECT id, status FROM payday.credit_intents(%s::text[])", [names])
    assert got == [(payout_db.ids["credit_pre"], "pre")]
    assert payout_db.tap.rows("SELECT * FROM payday.credit_intents(ARRAY[]::text[])") == []
    assert payout_db.tap.fingerprint() == before


def test_every_function_is_covered() -> None:
    """Each function of the SQL contract appears in a bad-input or wrong-phase case above."""
    called = " ".join(c[0] for c in ANY_PHASE + PAYIN + PAYOUT + WRONG_PHASE) + " ".join(AMOUNT_FUNCTIONS)
    for name in ["upcharge", "skim_credit", "transfer", "charge_intent", "charge_intents", "charge_outcome",
                 "credit_intent", "credit_intents", "credit_outcome", "record_outcomes", "pay_tips", "clear_pending",
                 "finish", "charges_due", "credits_due", "require_amount", "require_participant", "require_exchange",
                 "require_processor", "require_open_payday"]:
        assert f"payday.{name}(" in called, name


def test_error_messages_are_clear(payin_db: PhaseDB) -> None:
    err = payin_db.tap.throws_ok("SELECT payday.charge_intent('eve')", "PD003")
    assert err.diag.message_primary == "eve is not due a charge in payday 1: no funding source"
    assert err.diag.message_hint
    err = payin_db.tap.throws_ok("SELECT payday.transfer('frank', 'bob', 0.001)", "22023")
    assert "whole number of cents" in (err.diag.message_primary or "")
