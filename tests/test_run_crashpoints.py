"""SIGKILL `payday run` at each named crash point (PAYDAY_TEST_KILL_AT, runner/run.py), rerun:
the database equals an uninterrupted run's, and the sandbox processor holds exactly one
operation per exchange, each key sent once (SPEC section 5; issue 3, "Crash tests")."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import psycopg
import pytest

from crash_helpers import (KILLED, POINTS, assert_exactly_once, finish, full_state, run, sandbox_ops, unrecorded,
                           wait_for_runner_backends, world)

CASES = [f"{p}:{n}" for p, top in POINTS.items() for n in sorted({1, top})]


@pytest.fixture(scope="module")
def expected(make_db: Callable[[], AbstractContextManager[str]]) -> Iterator[dict[str, Any]]:
    """The end state of one uninterrupted run of `world()`."""
    with make_db() as dsn, psycopg.connect(dsn, autocommit=True) as db:
        world(dsn)
        rc, err = run(dsn)
        assert rc == 0, err
        s = full_state(db)
        assert s["paydays"][0][0] == "done"
        yield s


def test_the_world_reaches_every_point(expected: dict[str, Any]) -> None:
    """Sanity of the world: several charge batches, declines, credits of each outcome."""
    statuses = [(kind, status) for _, kind, _, _, _, status, _ in expected["exchanges"]]
    assert sum(k == "charge" for k, _ in statuses) > 100  # 3 micro-batches of 50
    assert ("charge", "failed") in statuses and ("credit", "failed") in statuses
    assert ("credit", "succeeded") in statuses
    (counters,) = expected["paydays"]
    assert counters[6] > 0 and counters[7] > 0  # ncc_failing, ncc_missing


@pytest.mark.parametrize("point", CASES)
def test_sigkill_at_a_crash_point_then_rerun(point: str, dsn: str, db: psycopg.Connection,
                                              expected: dict[str, Any]) -> None:
    world(dsn)
    rc, err = run(dsn, kill_at=point, latency=0.01)
    assert rc == KILLED, f"{point} was not reached (exit {rc}): {err[-2000:]}"
    if point.startswith("during_pay_tips"):
        wait_for_runner_backends(dsn)
        # The server ran the statement whose result nobody read: the resumed run must
        # see the payday in phase clear and not pay the tips twice.
        assert db.execute("SELECT phase FROM payday.paydays").fetchone() == ("clear",)
    if ".after_call" in point:
        # The window of SPEC section 5: the processor acted, the database never heard.
        assert unrecorded(db) > 0
    if point.startswith(("after_start", "after_intents")):
        assert sandbox_ops(db) == []
    finish(dsn)
    assert_exactly_once(db, expected)


@pytest.mark.parametrize("point", ["no_such_point", "charge.before_call:99"])
def test_a_point_never_reached_changes_nothing(point: str, dsn: str, db: psycopg.Connection,
                                               expected: dict[str, Any]) -> None:
    world(dsn)
    assert run(dsn, kill_at=point)[0] == 0
    assert_exactly_once(db, expected)
