"""SIGKILL the `payday run` process at various instants, rerun: same end state, no double charge."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager

import psycopg
import pytest

from test_run_sandbox import state

TIPPERS, TIPPEES = 240, 12


def world(dsn: str) -> None:
    """Tippers with cards (every 37th declines), tippees with bank accounts (one fails, one not a merchant)."""
    with psycopg.connect(dsn) as conn:
        conn.execute(
            "INSERT INTO payday.participants (username, claimed_time, is_suspicious, balance, "
            "balanced_account_uri, stripe_customer_id) "
            "SELECT 'r' || i, now() - interval '30 days', false, 0, "
            "'/v1/accounts/' || CASE i WHEN 3 THEN 'fail-' WHEN 5 THEN 'nomerchant-' ELSE '' END || i, NULL "
            "FROM generate_series(0, %s - 1) i",
            (TIPPEES,),
        )
        conn.execute(
            "INSERT INTO payday.participants (username, claimed_time, is_suspicious, balance, "
            "balanced_account_uri, stripe_customer_id) "
            "SELECT 't' || i, now() - interval '20 days' + i * interval '1 second', false, (i %% 4) * 3, NULL, "
            "CASE WHEN i %% 37 = 0 THEN 'cus_fail_' ELSE 'cus_' END || i FROM generate_series(1, %s) i",
            (TIPPERS,),
        )
        conn.execute(
            "INSERT INTO payday.tips (ctime, mtime, tipper, tippee, amount) "
            "SELECT now() - interval '10 days', now() - interval '10 days', 't' || i, 'r' || (i %% %s), "
            "(5 + i %% 7)::numeric FROM generate_series(1, %s) i",
            (TIPPEES, TIPPERS),
        )


def start_run(dsn: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "payday.cli", "--dsn", dsn, "run", "--processor", "sandbox",
         "--concurrency", "2", "--latency", "0.5"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def test_sigkill_at_any_instant_then_rerun_equals_an_uninterrupted_run(
    dsn: str, db: psycopg.Connection, make_db: Callable[[], AbstractContextManager[str]]
) -> None:
    world(dsn)
    t0 = time.monotonic()
    ref = start_run(dsn)
    out, err = ref.communicate(timeout=120)
    took = time.monotonic() - t0
    assert ref.returncode == 0, err
    expected = state(db)
    assert expected["paydays"][0][0] == "done"
    assert db.execute("SELECT count(*) FROM payday.exchanges WHERE kind = 'credit'").fetchone()[0] > 0  # type: ignore[index]

    with make_db() as crash_dsn, psycopg.connect(crash_dsn, autocommit=True) as crash_db:
        world(crash_dsn)
        kills = 0
        # Kill points spread over the uninterrupted run's own duration (fixed delays went
        # stale as the runner got faster): each rerun resumes with less left to do, so
        # the delays stay early in a run.
        for delay in (took * f for f in (0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6, 0.7)):
            proc = start_run(crash_dsn)
            time.sleep(delay)
            if proc.poll() is not None:
                break
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            kills += 1
        final = start_run(crash_dsn)
        out, err = final.communicate(timeout=120)
        assert final.returncode == 0, err
        assert kills >= 3, "the runs finished before they could be killed"
        assert state(crash_db) == expected
        assert crash_db.execute("SELECT * FROM payday.check()").fetchall() == []
        # Exactly one processor operation per exchange, with the same outcome.
        rows = crash_db.execute(
            "SELECT e.idempotency_key, e.status, o.succeeded FROM payday.exchanges e "
            "FULL JOIN payday_sandbox.operations o USING (idempotency_key)"
        ).fetchall()
        assert rows and all(
            status is not None and ok is not None and (status == "succeeded") == ok for _, status, ok in rows
        ), rows


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_stops_cleanly_and_resumes(dsn: str, db: psycopg.Connection, sig: int) -> None:
    world(dsn)
    proc = start_run(dsn)
    time.sleep(1.0)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    if proc.returncode == 0:
        pytest.skip("the run finished before the signal")
    assert proc.returncode == 130, err
    assert "interrupted; rerun to resume" in err and "Traceback" not in err
    again = start_run(dsn)
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    assert db.execute("SELECT * FROM payday.check()").fetchall() == []
    assert db.execute("SELECT phase FROM payday.paydays").fetchone() == ("done",)
