"""The runner against bad input and bad company: an inconsistent ledger, an unreachable or
babbling processor, two runners at once. Each ends in a one-line error with a documented exit
code (docs/cli.md), no traceback, and nothing recorded twice."""

from __future__ import annotations

import http.server
import logging
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from payday.demo import seed
from payday.run import LockHeld, run_payday

LOG = logging.getLogger("payday.tests")


def payday(*args: str, env: dict[str, str] | None = None, timeout: int = 180) -> subprocess.CompletedProcess[str]:
    """`python -m payday.cli ARGS` with no processor keys and no PG*/DATABASE_URL unless given."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "BALANCED_", "DATABASE_URL", "PG"))}
    return subprocess.run([sys.executable, "-m", "payday.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env={**base, **(env or {})})


def error_line(res: subprocess.CompletedProcess[str]) -> str:
    """The run's error: the last stderr line, which must be the only one not from the logger."""
    assert "Traceback" not in res.stderr, res.stderr
    lines = res.stderr.strip().splitlines()
    assert lines, "no error printed"
    assert lines[-1].startswith("payday: "), res.stderr
    assert sum(1 for line in lines if line.startswith("payday: ")) == 1, res.stderr
    return lines[-1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def exchanges(db: psycopg.Connection) -> list[tuple[Any, ...]]:
    return db.execute("SELECT participant, kind, processor, status FROM payday.exchanges ORDER BY id").fetchall()


# -- payday run refuses to start a payday on an inconsistent ledger -------------------------------


def test_run_refuses_to_start_while_check_reports_anything(dsn: str, db: psycopg.Connection) -> None:
    with psycopg.connect(dsn) as conn:
        seed(conn)
    db.execute("UPDATE payday.participants SET balance = balance + 5 WHERE username = 'judy'")  # behind the ledger
    res = payday("--dsn", dsn, "run", "--processor", "sandbox")
    assert res.returncode == 6, res.stderr
    line = error_line(res)
    assert "not starting a payday" in line and "balance differs from ledger judy" in line, line
    assert db.execute("SELECT count(*) FROM payday.paydays").fetchone() == (0,)  # nothing started
    db.execute("UPDATE payday.participants SET balance = balance - 5 WHERE username = 'judy'")
    res = payday("--dsn", dsn, "run", "--processor", "sandbox")
    assert res.returncode == 0, res.stderr


def test_run_lists_at_most_five_violations_on_its_one_line(dsn: str, db: psycopg.Connection) -> None:
    with psycopg.connect(dsn) as conn:
        seed(conn)
    db.execute("UPDATE payday.participants SET balance = balance + 1")  # twelve violations
    res = payday("--dsn", dsn, "run", "--processor", "sandbox")
    assert res.returncode == 6
    line = error_line(res)
    assert "12 violation(s)" in line and "and 7 more" in line, line
    db.execute("UPDATE payday.participants SET balance = balance - 1")


# -- processors that fail to answer properly ---------------------------------------------------------


def test_unreachable_processor_exits_5_and_records_nothing_twice(dsn: str, db: psycopg.Connection) -> None:
    with psycopg.connect(dsn) as conn:
        seed(conn)
    closed = f"http://127.0.0.1:{free_port()}"
    env = {"STRIPE_SECRET_KEY": "sk_test_hardening", "STRIPE_API_BASE": closed,
           "BALANCED_API_KEY": "ak-test-hardening", "BALANCED_API_BASE": closed}
    res = payday("--dsn", dsn, "run", env=env)
    assert res.returncode == 5, res.stderr
    assert "unreachable" in error_line(res) or "connect" in error_line(res).lower()
    first = exchanges(db)
    assert first and all(status == "pre" for *_, status in first), first  # intents kept, outcomes unknown
    res = payday("--dsn", dsn, "run", env=env)  # the rerun reconciles first: still no answer
    assert res.returncode == 5, res.stderr
    error_line(res)
    assert exchanges(db) == first  # nothing recorded twice
    assert db.execute("SELECT phase FROM payday.paydays").fetchone() == ("payin",)


class _Babbler(http.server.BaseHTTPRequestHandler):
    """Answers every request 200 with a body that is not what any processor API sends."""

    body = b"<html>this is not JSON</html>"

    def _reply(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    do_GET = do_POST = do_PUT = _reply

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(params=[
    b"<html>this is not JSON</html>",
    b'{"unexpected": "shape"}',
    b"[1, 2, 3]",
], ids=["not-json", "wrong-object", "array"])
def babbler(request: pytest.FixtureRequest) -> Iterator[str]:
    handler = type("Babbler", (_Babbler,), {"body": request.param})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_malformed_processor_replies_exit_5_and_record_nothing_twice(dsn: str, db: psycopg.Connection,
                                                                      babbler: str) -> None:
    with psycopg.connect(dsn) as conn:
        seed(conn)
    env = {"STRIPE_SECRET_KEY": "sk_test_hardening", "STRIPE_API_BASE": babbler,
           "BALANCED_API_KEY": "ak-test-hardening", "BALANCED_API_BASE": babbler}
    res = payday("--dsn", dsn, "run", env=env)
    assert res.returncode == 5, res.stderr
    error_line(res)
    first = exchanges(db)
    assert all(status == "pre" for *_, status in first), first  # a reply nobody understood is no outcome
    res = payday("--dsn", dsn, "run", env=env)
    assert res.returncode == 5, res.stderr
    error_line(res)
    assert exchanges(db) == first
    counts = db.execute("SELECT participant, kind, count(*) FROM payday.exchanges GROUP BY 1, 2 "
                        "HAVING count(*) > 1").fetchall()
    assert counts == []


# -- two runners started together -------------------------------------------------------------------


def test_two_runners_started_together_one_works_the_other_exits(dsn: str, db: psycopg.Connection) -> None:
    with psycopg.connect(dsn) as conn:
        seed(conn)
    barrier = threading.Barrier(2)
    results: list[Any] = []

    def runner() -> None:
        barrier.wait()
        try:
            results.append(run_payday(dsn, processor_override="sandbox", latency=0.3, log=LOG))
        except LockHeld as e:
            results.append(e)

    threads = [threading.Thread(target=runner) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    finished = [r for r in results if not isinstance(r, Exception)]
    locked = [r for r in results if isinstance(r, LockHeld)]
    assert len(finished) == 1 and len(locked) == 1, results
    assert finished[0].status == "finished" and locked[0].exit_code == 3
    assert "another payday runner" in str(locked[0]) and "\n" not in str(locked[0])
    assert db.execute("SELECT count(*), min(phase) FROM payday.paydays").fetchone() == (1, "done")
    # The sandbox saw each exchange once.
    assert db.execute("SELECT count(*) FROM payday_sandbox.operations WHERE calls <> 1").fetchone() == (0,)


def test_two_runner_processes_started_together(dsn: str, db: psycopg.Connection) -> None:
    with psycopg.connect(dsn) as conn:
        seed(conn)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "BALANCED_", "DATABASE_URL", "PG"))}
    cmd = [sys.executable, "-m", "payday.cli", "--dsn", dsn, "run", "--processor", "sandbox", "--latency", "1"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=base)
             for _ in range(2)]
    outs = [p.communicate(timeout=180) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 3], outs
    loser = next(err for p, (_, err) in zip(procs, outs) if p.returncode == 3)
    assert loser.strip().splitlines()[-1] == "payday: another payday runner holds the lock on this database; not starting"
    assert "Traceback" not in loser
    assert db.execute("SELECT count(*), min(phase) FROM payday.paydays").fetchone() == (1, "done")
