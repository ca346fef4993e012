"""The runner's payout: merchant checks for a batch of credits_due() rows, then one
payday.credit_intents() call for the batch's merchants, the jobs built from its rows.

The demo community (payday.demo.seed) is due four payouts, in claim order: bob, carol,
heidi (not a merchant) and oscar (declined by the sandbox).
"""
from __future__ import annotations

import logging
from decimal import Decimal as D
from typing import Any, Callable

import psycopg
import pytest

from payday import run as run_module
from payday.processors.sandbox import SandboxProcessor
from payday.processors.base import ProcessorError
from payday.run import EXIT_ERROR, EXIT_PROCESSOR, ProcessorFailure, RunError, Runner
from test_run_sandbox import LOG, _runner, assert_expected_end, counters, run, seeded


class _Meanwhile(SandboxProcessor):
    """The sandbox, running `action` (on its own connection) during heidi's merchant check:
    between credits_due() listing the batch and the credit_intents() call."""

    def __init__(self, dsn: str, action: Callable[[psycopg.Connection], Any]):
        super().__init__(dsn)
        self.dsn, self.action, self.done = dsn, action, False

    def is_merchant(self, route: str) -> bool:
        if "heidi" in route and not self.done:
            self.done = True
            with psycopg.connect(self.dsn, autocommit=True) as conn:
                self.action(conn)
        return super().is_merchant(route)


def _credits(db: psycopg.Connection) -> dict[str, tuple[str, str]]:
    return {p: (s, proc) for p, s, proc in db.execute(
        "SELECT participant, status, processor FROM payday.exchanges WHERE kind = 'credit'").fetchall()}


def test_one_credit_intents_call_per_batch_of_merchants(dsn: str, db: psycopg.Connection,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []
    real = Runner._credit_intents

    def spy(self: Runner, usernames: list[str]) -> list[Any]:
        calls.append(list(usernames))
        jobs = real(self, usernames)
        assert [j.username for j in jobs] == usernames and all(j.kind == "credit" for j in jobs)
        return jobs

    monkeypatch.setattr(run_module, "CREDIT_BATCH", 2)
    monkeypatch.setattr(Runner, "_credit_intents", spy)
    seeded(dsn)
    res = run(dsn)
    assert res.status == "finished"
    assert calls == [["bob", "carol"], ["oscar"]]  # heidi is not a merchant: never asked for
    assert_expected_end(db)  # the same payday as in one batch


def test_who_is_no_longer_due_is_left_out(dsn: str, db: psycopg.Connection,
                                          caplog: pytest.LogCaptureFixture) -> None:
    """carol raises a tip to the unclaimed dave during the merchant checks: her obligations now
    exceed her balance, credit_intents() leaves her out, the rest of the batch is paid out."""
    seeded(dsn)

    def raise_a_tip(conn: psycopg.Connection) -> None:
        conn.execute("INSERT INTO payday.tips (ctime, mtime, tipper, tippee, amount) "
                     "VALUES (now(), now(), 'carol', 'dave', 100.00)")

    with caplog.at_level(logging.INFO, logger=LOG.name):
        res = _runner(dsn, _Meanwhile(dsn, raise_a_tip)).run()
    assert res.status == "finished"
    assert "payout of carol skipped: no longer due" in caplog.messages
    assert not [m for m in caplog.messages if "no longer due" in m and "carol" not in m]
    assert _credits(db) == {"bob": ("succeeded", "sandbox"), "oscar": ("failed", "sandbox")}
    c = counters(db)
    assert (c["nachs"], c["nach_failing"]) == (1, 1)
    # 40.00 + 2.00 from alice + 1.00 from heidi, kept.
    assert db.execute("SELECT balance FROM payday.participants WHERE username = 'carol'").fetchone() == (D("43.00"),)
    assert db.execute("SELECT * FROM payday.check()").fetchall() == []


def test_a_payout_made_by_hand_meanwhile_stops_the_run_and_the_next_run_finishes(
        dsn: str, db: psycopg.Connection) -> None:
    """credit_intents() refuses the whole batch (PD003) when one of its names was paid out
    since credits_due() listed it: nothing of the batch is recorded, and the next run, whose
    credits_due() no longer lists that name, pays out the others."""
    seeded(dsn)

    def pay_carol_by_hand(conn: psycopg.Connection) -> None:
        (xid,) = conn.execute("SELECT payday.credit_intent('carol', 'manual')").fetchone()  # type: ignore[misc]
        conn.execute("SELECT payday.credit_outcome(%s, true, NULL, 'by hand')", (xid,))

    with pytest.raises(RunError) as err:
        _runner(dsn, _Meanwhile(dsn, pay_carol_by_hand)).run()
    assert err.value.exit_code == EXIT_ERROR
    assert "PD003" in str(err.value) and "carol" in str(err.value)
    assert _credits(db) == {"carol": ("succeeded", "manual")}
    res = run(dsn)
    assert res.status == "finished"
    assert _credits(db) == {"bob": ("succeeded", "sandbox"), "carol": ("succeeded", "manual"),
                            "oscar": ("failed", "sandbox")}
    assert db.execute("SELECT * FROM payday.check()").fetchall() == []


class _Batched(SandboxProcessor):
    """The sandbox, noting the size of each is_merchant_many() request."""

    def __init__(self, dsn: str, fail: bool = False):
        super().__init__(dsn)
        self.requests: list[int] = []
        self.fail = fail

    def is_merchant_many(self, routes: Any) -> list[bool]:
        self.requests.append(len(routes))
        if self.fail:
            raise ProcessorError("sandbox: merchant service down")
        return super().is_merchant_many(routes)


def test_merchant_checks_are_one_request_per_batch_when_the_processor_has_is_merchant_many(
        dsn: str, db: psycopg.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run_module, "CREDIT_BATCH", 3)
    seeded(dsn)
    proc = _Batched(dsn)
    assert _runner(dsn, proc).run().status == "finished"
    assert proc.requests == [3, 1]  # bob, carol, heidi; then oscar
    assert_expected_end(db)


def test_a_failed_batch_merchant_check_stops_the_run_before_any_credit_intent(
        dsn: str, db: psycopg.Connection) -> None:
    seeded(dsn)
    with pytest.raises(ProcessorFailure) as err:
        _runner(dsn, _Batched(dsn, fail=True)).run()
    assert err.value.exit_code == EXIT_PROCESSOR
    assert "merchant check failed for the batch from bob" in str(err.value) and "service down" in str(err.value)
    assert _credits(db) == {}
    assert run(dsn).status == "finished"
    assert_expected_end(db)


def test_an_error_while_recording_in_the_background_stops_the_run_and_the_next_run_reconciles(
        dsn: str, db: psycopg.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    """Outcomes are recorded in a background thread: its error is raised by the runner, the
    batch stays pre, and the next run finds the outcomes at the processor by lookup."""
    real = run_module._Outcomes._record

    def failing(self: Any, batch: Any) -> None:
        raise RunError("database error (XX000): boom")

    monkeypatch.setattr(run_module._Outcomes, "_record", failing)
    seeded(dsn)
    with pytest.raises(RunError, match="boom"):
        run(dsn)
    assert db.execute("SELECT count(*) > 0 FROM payday.exchanges WHERE status = 'pre'").fetchone() == (True,)
    monkeypatch.setattr(run_module._Outcomes, "_record", real)
    assert run(dsn).status == "finished"
    assert_expected_end(db)  # each exchange sent once: the second run looked them up
