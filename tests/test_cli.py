"""The `payday` command: exit codes, one-line errors, logs, subcommands (some as a subprocess)."""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys

import psycopg
import pytest

from payday.cli import main
from payday.run import LOCK_KEY
from test_run_sandbox import EXPECTED_COUNTERS, counters, seeded

TIMESTAMPED = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (INFO|WARNING|ERROR|DEBUG) ", re.M)


def payday(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Runs `python -m payday.cli ARGS` in a clean environment (no processor keys)."""
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("STRIPE_", "BALANCED_", "DATABASE_URL", "PG"))}
    return subprocess.run(
        [sys.executable, "-m", "payday.cli", *args], capture_output=True, text=True, timeout=120,
        env={**base, **(env or {})},
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_help_teaches(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for word in ("examples:", "payday run --processor sandbox", "exit codes:", "DATABASE_URL", "STRIPE_SECRET_KEY"):
        assert word in out
    assert main(["run", "--help"]) == 0
    assert "--concurrency" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [
    [], ["frobnicate"], ["run", "--concurrency", "0"], ["run", "--rps", "-1"], ["run", "--processor", "paypal"],
    ["run", "--latency", "0.1"], ["report", "--payday", "x"],
])
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_unreachable_database_exits_4_with_one_line_and_no_secret() -> None:
    dsn = f"host=127.0.0.1 port={free_port()} user=postgres dbname=nowhere password=hunter2 connect_timeout=3"
    for cmd in (["status"], ["run", "--processor", "sandbox"], ["report"], ["plan"], ["migrate"]):
        res = payday("--dsn", dsn, *cmd)
        assert res.returncode == 4, (cmd, res.stderr)
        err = res.stderr.strip()
        assert "Traceback" not in err and "hunter2" not in err and len(err.splitlines()) == 1, err
        assert err.startswith("payday: cannot connect to the database")


def test_malformed_dsn_exits_4() -> None:
    res = payday("--dsn", "this is = not a dsn", "status")
    assert res.returncode == 4 and "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_database_url_is_used(dsn: str) -> None:
    res = payday("status", env={"DATABASE_URL": dsn})
    assert res.returncode == 0 and "no open payday" in res.stdout


def test_run_as_a_subprocess_then_nothing_to_do(dsn: str, db: psycopg.Connection) -> None:
    seeded(dsn)
    res = payday("--dsn", dsn, "run", "--processor", "sandbox", "--concurrency", "3")
    assert res.returncode == 0, res.stderr
    assert "payday 1 finished" in res.stdout
    assert TIMESTAMPED.search(res.stderr) and "phase payout" in res.stderr
    assert counters(db) == EXPECTED_COUNTERS
    again = payday("--dsn", dsn, "run", "--processor", "sandbox")
    assert again.returncode == 0 and "nothing to do" in again.stdout
    assert db.execute("SELECT count(*) FROM payday.paydays").fetchone() == (1,)
    res = payday("--dsn", dsn, "report", "--json")
    assert res.returncode == 0 and json.loads(res.stdout)[0]["charge_volume"] == "36.81"


def test_second_runner_exits_3(dsn: str) -> None:
    seeded(dsn)
    with psycopg.connect(dsn, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        res = payday("--dsn", dsn, "run", "--processor", "sandbox")
    assert res.returncode == 3
    assert res.stderr.strip().splitlines() == ["payday: another payday runner holds the lock on this database; not starting"]


def test_missing_processor_keys_exit_5_before_any_intent(dsn: str, db: psycopg.Connection) -> None:
    seeded(dsn)
    res = payday("--dsn", dsn, "run")
    assert res.returncode == 5, res.stderr
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("payday: processor ") and ("STRIPE_SECRET_KEY" in last or "BALANCED_API_KEY" in last)
    assert "Traceback" not in res.stderr
    assert db.execute("SELECT count(*) FROM payday.exchanges").fetchone() == (0,)


def test_invariant_violation_exits_6(dsn: str, db: psycopg.Connection, capsys: pytest.CaptureFixture[str]) -> None:
    seeded(dsn)
    db.execute("SELECT payday.start()")
    db.execute("SELECT * FROM payday.pay_tips()")  # nobody charged (no intents): fine for this test
    db.execute("SELECT payday.clear_pending()")
    db.execute("UPDATE payday.participants SET balance = balance + 1 WHERE username = 'judy'")  # behind the ledger's back
    assert main(["--dsn", dsn, "run", "--processor", "sandbox"]) == 6
    err = capsys.readouterr().err
    assert "payday.finish() refused" in err and "Traceback" not in err


def test_migrate_twice(empty_dsn: str) -> None:
    assert main(["--dsn", empty_dsn, "migrate"]) == 0
    assert main(["--dsn", empty_dsn, "migrate"]) == 0
    with psycopg.connect(empty_dsn) as conn:
        assert conn.execute("SELECT to_regclass('payday.paydays') IS NOT NULL").fetchone() == (True,)


def test_status_plan_report_via_main(dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    seeded(dsn)
    assert main(["--dsn", dsn, "plan"]) == 0
    assert "payouts:   4 payout(s)" in capsys.readouterr().out
    assert main(["plan", "--json", "--dsn", dsn]) == 0  # global options after the command too
    assert json.loads(capsys.readouterr().out)["summary"]["transfers"]["n"] == 8
    assert main(["--dsn", dsn, "run", "--processor", "sandbox"]) == 0
    capsys.readouterr()
    assert main(["--dsn", dsn, "status"]) == 0
    assert "last finished payday 1" in capsys.readouterr().out
    assert main(["--dsn", dsn, "report", "--payday", "1"]) == 0
    assert "nach_failing        1" in capsys.readouterr().out
    assert main(["--dsn", dsn, "report", "--payday", "9"]) == 1
    assert capsys.readouterr().err.strip() == "payday: no payday 9"


def test_unmigrated_database_exits_4_and_says_migrate(empty_dsn: str) -> None:
    for cmd in (["run", "--processor", "sandbox"], ["status"], ["report"], ["plan"]):
        res = payday("--dsn", empty_dsn, *cmd)
        assert res.returncode == 4, (cmd, res.stderr)
        assert "payday migrate" in res.stderr and "Traceback" not in res.stderr
