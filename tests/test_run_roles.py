"""The orchestrator needs no privilege beyond the `payday_runner` role's grants."""
from __future__ import annotations

import io
import os
import threading
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from payday.processors.base import Attempt, Outcome
from payday.plan import plan
from payday.report import report, status
from payday.run import Runner
from test_run_sandbox import EXPECTED_BALANCES, EXPECTED_COUNTERS, LOG, counters, seeded


class MemoryProcessor:
    """The sandbox's rules, in memory (no schema of its own): thread-safe, idempotent by key."""

    name = "sandbox"

    def __init__(self) -> None:
        self.ops: dict[str, Outcome] = {}
        self.lock = threading.Lock()

    def _do(self, a: Attempt) -> Outcome:
        with self.lock:
            if a.idempotency_key not in self.ops:
                self.ops[a.idempotency_key] = (
                    Outcome(False, error="declined (route contains fail)") if "fail" in a.route
                    else Outcome(True, processor_ref=f"mem:{a.idempotency_key}")
                )
            return self.ops[a.idempotency_key]

    charge = credit = _do

    def lookup(self, a: Attempt) -> Outcome | None:
        with self.lock:
            return self.ops.get(a.idempotency_key)

    def is_merchant(self, route: str) -> bool:
        return "nomerchant" not in route


@pytest.fixture
def runner_dsn(dsn: str, db: psycopg.Connection) -> Iterator[str]:
    """A login role that is only a member of payday_runner (created by migration 0002)."""
    role, password = f"payday_t_runner_{os.getpid()}_{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
    db.execute(f'CREATE ROLE "{role}" LOGIN PASSWORD \'{password}\' IN ROLE payday_runner')
    params = {k: v for k, v in conninfo_to_dict(dsn).items() if v is not None}
    params.update(user=role, password=password)
    try:
        yield make_conninfo("", **params)
    finally:
        db.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,))
        db.execute(f'DROP ROLE "{role}"')


def test_a_whole_payday_as_payday_runner(dsn: str, db: psycopg.Connection, runner_dsn: str) -> None:
    seeded(dsn)
    summary = plan(runner_dsn, io.StringIO())
    assert summary["payouts"]["n"] == 4
    assert db.execute("SELECT count(*) FROM payday.paydays").fetchone() == (0,)
    r = Runner(runner_dsn, processor_override="sandbox", concurrency=4, rps=None, force=False, latency=0.0, log=LOG)
    r.processors["sandbox"] = MemoryProcessor()
    res = r.run()
    assert res.status == "finished"
    assert counters(db) == EXPECTED_COUNTERS
    assert dict(db.execute("SELECT username, balance FROM payday.participants").fetchall()) == EXPECTED_BALANCES
    assert db.execute("SELECT * FROM payday.check()").fetchall() == []
    out = io.StringIO()
    status(runner_dsn, out)
    report(runner_dsn, out)
    # payday 2: the plan took id 1 and this role may not rewind the sequence (docs/cli.md)
    assert f"last finished payday {res.payday_id}" in out.getvalue()
