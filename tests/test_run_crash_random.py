"""Randomized crash test: per seed, SIGKILL `payday run` several times, at a random crash
point (PAYDAY_TEST_KILL_AT=<point>:<n>, runner/run.py) or after a random delay, resuming
in between, then finish; the end must equal an uninterrupted run's, with one sandbox
operation per exchange, each key sent once. The seeds are fixed: a failure names its seed
and the plan of kills, and the plan replays (delays up to the machine's timing)."""
from __future__ import annotations

import random
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import psycopg
import pytest

from crash_helpers import (KILLED, POINTS, assert_exactly_once, finish, full_state, run, start_run,
                           wait_for_runner_backends, world)

SEEDS = [20240501, 7, 1337, 42, 9001]
KILLS_PER_SEED = 4  # at most; a seed ends when a run finishes the payday
SECONDS_PER_SEED = 30.0
LATENCY = 0.1  # per sandbox call: widens the windows a random delay can fall in

# The points a run can still reach, by the phase it resumes in.
LATER = ["after_start", "after_clear", "before_credit_intent", "after_credit_intent", "credit.before_call",
         "credit.after_call", "after_record", "before_finish", "after_finish"]
REACHABLE = {
    None: list(POINTS),
    "payin": list(POINTS),
    "clear": LATER,
    "payout": [p for p in LATER if p != "after_clear"],
}


@pytest.fixture(scope="module")
def reference(make_db: Callable[[], AbstractContextManager[str]]) -> Iterator[tuple[dict[str, Any], float]]:
    """The end state of an uninterrupted run, and how long that run took."""
    with make_db() as dsn, psycopg.connect(dsn, autocommit=True) as db:
        world(dsn)
        t0 = time.monotonic()
        rc, err = run(dsn, latency=LATENCY)
        assert rc == 0, err
        yield full_state(db), time.monotonic() - t0


def phase(db: psycopg.Connection) -> str | None:
    row = db.execute("SELECT phase FROM payday.paydays ORDER BY id DESC LIMIT 1").fetchone()
    return row[0] if row else None


def killed_after(dsn: str, delay: float) -> tuple[int, str]:
    proc = start_run(dsn, latency=LATENCY)
    try:
        proc.wait(timeout=delay)
    except Exception:
        proc.send_signal(signal.SIGKILL)
    out, err = proc.communicate(timeout=60)
    return proc.returncode, err


def crash_many_times(dsn: str, db: psycopg.Connection, rng: random.Random, plan: list[str], duration: float) -> int:
    kills = 0
    deadline = time.monotonic() + SECONDS_PER_SEED
    while kills < KILLS_PER_SEED and time.monotonic() < deadline:
        now = phase(db)
        if now == "done":
            break
        if rng.random() < 0.5:
            point = rng.choice(REACHABLE[now])
            n = rng.randint(1, POINTS[point] if now in (None, "payin") else 1)
            plan.append(f"{point}:{n}")
            rc, err = run(dsn, kill_at=f"{point}:{n}", latency=LATENCY)
        else:
            delay = round(rng.uniform(0.1, 0.95) * duration, 2)
            plan.append(f"sleep {delay}")
            rc, err = killed_after(dsn, delay)
        plan[-1] += f" -> {rc}"
        assert rc in (KILLED, 0, 3), err[-3000:]
        if rc == KILLED:
            kills += 1
            wait_for_runner_backends(dsn)
        elif rc == 3:  # an earlier kill's session still held the lock
            wait_for_runner_backends(dsn)
    return kills


@pytest.mark.parametrize("seed", SEEDS)
def test_random_sigkills_then_rerun_equal_an_uninterrupted_run(
    seed: int, dsn: str, db: psycopg.Connection, reference: tuple[dict[str, Any], float]
) -> None:
    expected, duration = reference
    rng = random.Random(seed)
    plan: list[str] = []
    world(dsn)
    try:
        kills = crash_many_times(dsn, db, rng, plan, duration)
        plan.append(f"finished after {finish(dsn)} run(s)")
        assert kills >= 1, "no run was killed"
        assert_exactly_once(db, expected)
    except AssertionError as e:
        raise AssertionError(f"seed {seed}, plan {plan}: {e}") from e
    print(f"seed {seed}: {kills} kills: {plan}")
