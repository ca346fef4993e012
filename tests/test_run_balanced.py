"""`payday run` with Balanced (a local HTTP server speaking its REST shapes) and Stripe
(localstripe) side by side: each participant goes to its own processor (SPEC section 8)."""
from __future__ import annotations

import importlib.util
import time
from decimal import Decimal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import psycopg.sql
import pytest
from pytest_httpserver import HTTPServer

from payday.run import ProcessorFailure, run_payday
from test_run_sandbox import LOG
from test_run_stripe import CARDS, customer, localstripe_base, stripe_env  # noqa: F401  (fixtures)


def _fake_module() -> Any:
    path = Path(__file__).parent / "processors" / "test_balanced_processor.py"
    spec = importlib.util.spec_from_file_location("payday_tests_fake_balanced", path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


FB = _fake_module()
MP = FB.MP


@pytest.fixture
def balanced_fake(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> Any:
    fake = FB.FakeBalanced()
    fake.roles.update({
        f"{MP}/accounts/AC_gus": ["buyer"],  # pays by card through Balanced
        f"{MP}/accounts/AC_hal": ["buyer", "merchant"],  # paid out
        f"{MP}/accounts/AC_ivy": ["buyer"],  # would be paid out, not a merchant
    })
    httpserver.expect_request(FB.ACCOUNT_PATH).respond_with_handler(fake.handle)
    monkeypatch.setenv("BALANCED_API_KEY", FB.KEY)
    monkeypatch.setenv("BALANCED_API_BASE", httpserver.url_for("/"))
    return fake


def _people(dsn: str, people: list[tuple[str, str, str | None, str | None]],
            tips: list[tuple[str, str, str]]) -> None:
    """Participants (username, balance, balanced_account_uri, stripe_customer_id), claimed a
    day apart from 30 days ago, and their tips (tipper, tippee, amount) from 9 days ago."""
    with psycopg.connect(dsn) as conn:
        for i, (name, balance, buri, cus) in enumerate(people):
            conn.execute(
                "INSERT INTO payday.participants (username, claimed_time, is_suspicious, balance, "
                "balanced_account_uri, stripe_customer_id) VALUES (%s, now() - make_interval(days => %s), false, %s, %s, %s)",
                (name, 30 - i, balance, buri, cus),
            )
        for tipper, tippee, amount in tips:
            conn.execute(
                "INSERT INTO payday.tips (ctime, mtime, tipper, tippee, amount) "
                "VALUES (now() - interval '9 days', now() - interval '9 days', %s, %s, %s)",
                (tipper, tippee, amount),
            )


def test_balanced_and_stripe_in_one_payday(dsn: str, db: psycopg.Connection, stripe_env: dict[str, str],
                                           customer: Callable[[str], str], balanced_fake: Any) -> None:
    people = [  # username, balance, balanced_account_uri, stripe_customer_id
        ("fay", "0.00", None, customer(CARDS.VISA)),
        ("gus", "0.00", f"{MP}/accounts/AC_gus", customer(CARDS.VISA)),  # balanced preferred
        ("dee", "0.00", FB.DECLINING, None),
        ("hal", "30.00", f"{MP}/accounts/AC_hal", None),
        ("ivy", "30.00", f"{MP}/accounts/AC_ivy", None),
    ]
    _people(dsn, people, [("fay", "hal", "10.00"), ("gus", "hal", "20.00"), ("dee", "ivy", "4.00")])
    res = run_payday(dsn, log=LOG, concurrency=2)
    assert res.status == "finished"
    ex = {(u, k): (p, s) for u, k, p, s in db.execute(
        "SELECT participant, kind, processor, status FROM payday.exchanges").fetchall()}
    assert ex == {
        ("fay", "charge"): ("stripe", "succeeded"),
        ("gus", "charge"): ("balanced", "succeeded"),
        ("dee", "charge"): ("balanced", "failed"),
        ("hal", "credit"): ("balanced", "succeeded"),  # 30 + 10 + 20 = 60.00 -> 59.70 to the bank
    }
    [credit] = balanced_fake.items["credits"]
    assert credit["amount"] == 5970 and credit["account_uri"] == f"{MP}/accounts/AC_hal"
    [debit] = balanced_fake.items["debits"]
    assert debit["account_uri"] == f"{MP}/accounts/AC_gus" and debit["amount"] == 2110  # (20 + .30) * 1.039 up
    error = db.execute("SELECT last_bill_result FROM payday.participants WHERE username = 'dee'").fetchone()
    assert error and "declined" in error[0] and FB.KEY not in error[0]  # the key the fake echoed is redacted
    ivy = db.execute("SELECT balance FROM payday.participants WHERE username = 'ivy'").fetchone()
    assert ivy == (Decimal("30.00"),)  # not a merchant: kept
    assert db.execute("SELECT * FROM payday.check()").fetchall() == []


def _track_function_calls(db: psycopg.Connection) -> None:
    """Count calls of the PL/pgSQL functions in every session of this test's database."""
    db.execute(f"ALTER DATABASE {psycopg.sql.Identifier(db.info.dbname).as_string(db)} SET track_functions = 'pl'")


def _calls(db: psycopg.Connection, function: str) -> int:
    """Calls of payday.<function> so far, once the runner's sessions have reported them (at
    their exit): waits until charge_intents(), which every run calls, shows up."""
    query = ("SELECT coalesce(sum(calls) FILTER (WHERE funcname = %s), 0), "
             "coalesce(sum(calls) FILTER (WHERE funcname = 'charge_intents'), 0) "
             "FROM pg_stat_user_functions WHERE schemaname = 'payday'")
    for _ in range(100):
        db.execute("SELECT pg_stat_clear_snapshot()")
        calls, intents = db.execute(query, (function,)).fetchone()
        if intents:
            return int(calls)
        time.sleep(0.05)
    raise AssertionError("the runner's function calls were never reported")


def test_with_every_key_set_no_pass_asks_which_processors_are_needed(
        dsn: str, db: psycopg.Connection, stripe_env: dict[str, str], customer: Callable[[str], str],
        balanced_fake: Any) -> None:
    """Both processors build from their keys, so the runner records the intents without first
    computing what is due only to learn which processors it needs (7.8 s at 1M)."""
    _track_function_calls(db)
    _people(dsn, [("fay", "0.00", None, customer(CARDS.VISA)), ("gus", "0.00", f"{MP}/accounts/AC_gus", None),
                  ("hal", "0.00", None, None)],
            [("fay", "hal", "10.00"), ("gus", "hal", "20.00")])
    assert run_payday(dsn, log=LOG, concurrency=2).status == "finished"
    assert _calls(db, "charges_due") == 0
    assert db.execute("SELECT participant, processor, status FROM payday.exchanges ORDER BY participant").fetchall() == [
        ("fay", "stripe", "succeeded"), ("gus", "balanced", "succeeded")]


def test_a_processor_without_its_key_stops_the_run_only_when_a_charge_needs_it(
        dsn: str, db: psycopg.Connection, stripe_env: dict[str, str], customer: Callable[[str], str]) -> None:
    """No BALANCED_API_KEY: the runner asks which processors the due charges need (one pass)
    and, as none is Balanced's, pays the payday through Stripe. Once a charge is due through
    Balanced, the next run stops before recording any intent (exit 5)."""
    _track_function_calls(db)
    _people(dsn, [("fay", "0.00", None, customer(CARDS.VISA)), ("hal", "0.00", None, None),
                  ("gus", "0.00", f"{MP}/accounts/AC_gus", None)],
            [("fay", "hal", "10.00")])
    assert run_payday(dsn, log=LOG, concurrency=2).status == "finished"
    assert _calls(db, "charges_due") == 1
    assert db.execute("SELECT participant, processor, status FROM payday.exchanges").fetchall() == [
        ("fay", "stripe", "succeeded")]
    db.execute("INSERT INTO payday.tips (ctime, mtime, tipper, tippee, amount) "
               "VALUES (now() - interval '8 days', now() - interval '8 days', 'gus', 'hal', '5.00')")
    with pytest.raises(ProcessorFailure) as err:
        run_payday(dsn, log=LOG, concurrency=2, force=True)
    assert "processor balanced is not usable" in str(err.value) and "BALANCED_API_KEY" in str(err.value)
    assert db.execute("SELECT count(*) FROM payday.exchanges WHERE participant = 'gus'").fetchone() == (0,)
