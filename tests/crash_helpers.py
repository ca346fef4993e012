"""Shared by the crash tests: a world with every branch of SPEC section 4, `payday run` as a
subprocess (optionally with the PAYDAY_TEST_KILL_AT hook of runner/run.py), and the end
state compared between an uninterrupted run and a crashed-then-resumed one."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

import psycopg

from test_run_sandbox import state

TIPPERS, TIPPEES = 180, 10
KILLED = -signal.SIGKILL

# Every crash point of runner/run.py (module docstring), with the n each one can reach in
# `world()` at the sandbox's 50-exchange micro-batches: ~120 charges are 3 batches, the
# payouts one; outcomes are flushed once per phase at this speed.
POINTS: dict[str, int] = {
    "after_start": 1,
    "after_intents": 1,
    "charge.before_call": 3,
    "charge.after_call": 3,
    "after_record": 2,
    "before_pay_tips": 1,
    "during_pay_tips": 1,
    "after_pay_tips": 1,
    "after_clear": 1,
    "before_credit_intent": 1,
    "after_credit_intent": 1,
    "credit.before_call": 1,
    "credit.after_call": 1,
    "before_finish": 1,
    "after_finish": 1,
}


def world(dsn: str) -> None:
    """Tippees r0..r9 with bank accounts: r3's payout fails, r5 is not a merchant, r7 is
    suspicious (tips to them are skipped), r8 unreviewed (no payout). An unclaimed stub.
    Tippers t1..t180 with sandbox cards: every 37th declines, every 41st has no funding
    source, every 29th is unreviewed (never charged), every 31st suspicious (left out)."""
    with psycopg.connect(dsn) as conn:
        conn.execute(
            "INSERT INTO payday.participants (username, claimed_time, is_suspicious, balance, "
            "balanced_account_uri, stripe_customer_id) "
            "SELECT 'r' || i, now() - interval '30 days', CASE i WHEN 7 THEN true WHEN 8 THEN NULL ELSE false END, "
            "i, '/v1/accounts/' || CASE i WHEN 3 THEN 'fail-' WHEN 5 THEN 'nomerchant-' ELSE '' END || i, NULL "
            "FROM generate_series(0, %s - 1) i",
            (TIPPEES,),
        )
        conn.execute(
            "INSERT INTO payday.participants (username, claimed_time, is_suspicious, balance) "
            "VALUES ('stub', NULL, NULL, 0)"
        )
        conn.execute(
            "INSERT INTO payday.participants (username, claimed_time, is_suspicious, balance, "
            "balanced_account_uri, stripe_customer_id) "
            "SELECT 't' || i, now() - interval '20 days' + i * interval '1 second', "
            "CASE WHEN i %% 29 = 0 THEN NULL WHEN i %% 31 = 0 THEN true ELSE false END, (i %% 4) * 3, NULL, "
            "CASE WHEN i %% 41 = 0 THEN NULL WHEN i %% 37 = 0 THEN 'cus_fail_' || i ELSE 'cus_' || i END "
            "FROM generate_series(1, %s) i",
            (TIPPERS,),
        )
        conn.execute(
            "INSERT INTO payday.tips (ctime, mtime, tipper, tippee, amount) "
            "SELECT now() - interval '10 days', now() - interval '10 days', 't' || i, 'r' || (i %% %s), "
            "(5 + i %% 7)::numeric FROM generate_series(1, %s) i",
            (TIPPEES, TIPPERS),
        )
        conn.execute(  # a second, later relationship for some: to the stub (skipped) or a zero tip
            "INSERT INTO payday.tips (ctime, mtime, tipper, tippee, amount) "
            "SELECT now() - interval '9 days', now() - interval '9 days', 't' || i, "
            "CASE WHEN i %% 2 = 0 THEN 'stub' ELSE 'r' || ((i + 1) %% %s) END, "
            "CASE WHEN i %% 2 = 0 THEN 2 ELSE 0 END FROM generate_series(1, %s, 13) i",
            (TIPPEES, TIPPERS),
        )


def full_state(db: psycopg.Connection) -> dict[str, Any]:
    """test_run_sandbox.state() (no ids, no timestamps; amounts, statuses, errors and
    counters), plus what the processor holds: its operations by who/what/outcome/calls."""
    s = state(db)
    s["routes"] = db.execute(
        "SELECT participant, kind, route, processor_ref IS NOT NULL FROM payday.exchanges ORDER BY 1, 2"
    ).fetchall()
    s["sandbox"] = sandbox_ops(db)
    return s


def sandbox_ops(db: psycopg.Connection) -> list[tuple[Any, ...]]:
    if db.execute("SELECT to_regclass('payday_sandbox.operations')").fetchone() == (None,):
        return []
    return db.execute(
        "SELECT username, kind, route, cents, succeeded, error, calls FROM payday_sandbox.operations ORDER BY 1, 2"
    ).fetchall()


def unrecorded(db: psycopg.Connection) -> int:
    """Exchanges still `pre` that the sandbox has already acted on."""
    if not sandbox_ops(db):
        return 0
    row = db.execute(
        "SELECT count(*) FROM payday.exchanges e JOIN payday_sandbox.operations o USING (idempotency_key) "
        "WHERE e.status = 'pre'"
    ).fetchone()
    return int(row[0]) if row else 0


def run_env(kill_at: str | None = None, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PAYDAY_TEST_KILL_AT"}
    for name in ("STRIPE_SECRET_KEY", "STRIPE_API_BASE", "BALANCED_API_KEY", "BALANCED_API_BASE"):
        env.pop(name, None)
    env.update(extra or {})
    if kill_at:
        env["PAYDAY_TEST_KILL_AT"] = kill_at
    return env


def start_run(dsn: str, *, kill_at: str | None = None, sandbox: bool = True, latency: float = 0.0,
              env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    args = [sys.executable, "-m", "payday.cli", "--dsn", dsn, "run", "--concurrency", "2"]
    if sandbox:
        args += ["--processor", "sandbox", "--latency", str(latency)]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=run_env(kill_at, env))


def run(dsn: str, **kw: Any) -> tuple[int, str]:
    proc = start_run(dsn, **kw)
    out, err = proc.communicate(timeout=120)
    return proc.returncode, err


def wait_for_runner_backends(dsn: str, timeout: float = 30.0) -> None:
    """A SIGKILLed runner's server sessions end when the server notices (an idle one at once,
    one running a statement once it is done); until then they hold the runner's lock."""
    dbname = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
    deadline = time.monotonic() + timeout
    with psycopg.connect(dsn, autocommit=True) as conn:
        while conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND application_name IN ('payday', 'payday_sandbox')",
            (dbname,),
        ).fetchone() != (0,):
            assert time.monotonic() < deadline, "the killed runner's sessions are still there"
            time.sleep(0.05)


def finish(dsn: str, **kw: Any) -> int:
    """Rerun without the hook until a run exits 0 (3, the lock, only while the killed
    runner's sessions are still ending). Returns how many runs it took."""
    for i in range(1, 6):
        rc, err = run(dsn, **kw)
        if rc == 0:
            return i
        assert rc == 3, f"rerun exited {rc}: {err[-3000:]}"
        wait_for_runner_backends(dsn)
    raise AssertionError("the rerun never got the lock")


def assert_same(got: dict[str, Any], expected: dict[str, Any]) -> None:
    """Equal states, or an error naming the rows that differ."""
    for part in expected:
        if got[part] != expected[part]:
            extra = [r for r in got[part] if r not in expected[part]]
            missing = [r for r in expected[part] if r not in got[part]]
            raise AssertionError(f"{part} differ: got {extra}, expected {missing}")


def assert_exactly_once(db: psycopg.Connection, expected: dict[str, Any]) -> None:
    """Same end state as the uninterrupted run, a consistent ledger, and at the sandbox one
    operation per exchange with the same outcome, each key sent once (a resumed run looked
    keys up rather than re-sending them)."""
    assert_same(full_state(db), expected)
    assert db.execute("SELECT * FROM payday.check()").fetchall() == []
    rows = db.execute(
        "SELECT e.idempotency_key, e.status, o.succeeded, o.calls FROM payday.exchanges e "
        "FULL JOIN payday_sandbox.operations o USING (idempotency_key) ORDER BY 1"
    ).fetchall()
    assert rows
    bad = [r for r in rows if r[1] is None or r[2] is None or (r[1] == "succeeded") != r[2] or r[3] != 1]
    assert not bad, bad
