"""The sandbox processor against a real (throwaway) PostgreSQL database."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from payday.processors import Attempt, Outcome, ProcessorError, make_processor
from payday.processors.sandbox import SandboxProcessor


def attempt(n: int, route: str = "/v1/accounts/A1", kind: str = "charge", cents: int = 1000) -> Attempt:
    return Attempt(n, f"payday-1-exchange-{n}", 1, f"user{n}", route, kind, cents)  # type: ignore[arg-type]


@pytest.fixture
def sandbox(sandbox_dsn: str) -> Iterator[SandboxProcessor]:
    with SandboxProcessor(sandbox_dsn) as p:
        yield p


def operations(dsn: str) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT idempotency_key, kind, username, route, cents, succeeded, error, calls"
            "  FROM payday_sandbox.operations ORDER BY idempotency_key").fetchall()


def test_charge_succeeds_and_is_recorded(sandbox: SandboxProcessor, sandbox_dsn: str) -> None:
    out = sandbox.charge(attempt(1, cents=1068))
    assert out == Outcome(True, processor_ref="sandbox:payday-1-exchange-1")
    assert operations(sandbox_dsn) == [
        ("payday-1-exchange-1", "charge", "user1", "/v1/accounts/A1", 1068, True, None, 1)]


def test_route_with_fail_declines(sandbox: SandboxProcessor, sandbox_dsn: str) -> None:
    out = sandbox.charge(attempt(2, route="cus_fail_1"))
    assert not out.succeeded
    assert out.error == 'card declined (sandbox: route contains "fail")'
    out = sandbox.credit(attempt(3, route="/v1/accounts/failing", kind="credit"))
    assert not out.succeeded and "fail" in (out.error or "")
    assert [r[5] for r in operations(sandbox_dsn)] == [False, False]


def test_credit_succeeds(sandbox: SandboxProcessor) -> None:
    assert sandbox.credit(attempt(4, kind="credit")).succeeded


def test_merchants(sandbox: SandboxProcessor) -> None:
    assert sandbox.is_merchant("/v1/accounts/A1")
    assert not sandbox.is_merchant("/v1/accounts/nomerchant-7")
    assert sandbox.is_merchant_many(["/v1/accounts/nomerchant-7", "/v1/accounts/A1"]) == [False, True]
    assert sandbox.is_merchant_many([]) == []


def test_same_key_twice_records_one_operation(sandbox: SandboxProcessor, sandbox_dsn: str) -> None:
    first = sandbox.charge(attempt(5))
    again = sandbox.charge(attempt(5))
    assert again == first
    rows = operations(sandbox_dsn)
    assert len(rows) == 1 and rows[0][-1] == 2  # one operation, sent twice


def test_kind_mismatch_is_refused(sandbox: SandboxProcessor) -> None:
    with pytest.raises(ProcessorError, match="is a credit"):
        sandbox.charge(attempt(6, kind="credit"))
    sandbox.charge(attempt(7))
    with pytest.raises(ProcessorError, match="recorded as a charge"):
        sandbox.lookup(attempt(7, kind="credit"))


def test_lookup_after_a_crash_finds_what_was_done(sandbox_dsn: str) -> None:
    before = SandboxProcessor(sandbox_dsn)
    done = before.charge(attempt(8))
    declined = before.charge(attempt(9, route="fail"))
    del before  # the runner died without closing anything
    with SandboxProcessor(sandbox_dsn) as after:
        assert after.lookup(attempt(8)) == done
        assert after.lookup(attempt(9, route="fail")) == declined
        assert after.lookup(attempt(10)) is None
        assert after.lookup_many([attempt(10), attempt(8)]) == [None, done]


CRASHING_CHILD = """
import os, signal, sys
from payday.processors import Attempt
from payday.processors.sandbox import SandboxProcessor
p = SandboxProcessor(sys.argv[1])
p.charge(Attempt(11, "payday-1-exchange-11", 1, "user11", "cus_1", "charge", 1500))
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_lookup_after_sigkill(sandbox_dsn: str) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.run([sys.executable, "-c", CRASHING_CHILD, sandbox_dsn], env=env, timeout=60)
    assert child.returncode == -signal.SIGKILL
    with SandboxProcessor(sandbox_dsn) as p:
        a = attempt(11, route="cus_1", cents=1500)
        assert p.lookup(a) == Outcome(True, processor_ref="sandbox:payday-1-exchange-11")
        assert p.charge(a).succeeded  # a retry with the same key changes nothing
    assert [(r[0], r[4], r[-1]) for r in operations(sandbox_dsn)] == [("payday-1-exchange-11", 1500, 2)]


def test_concurrent_charges_from_threads(sandbox_dsn: str) -> None:
    with SandboxProcessor(sandbox_dsn, latency=0.05) as p:
        batch = [attempt(n) for n in range(100, 160)] * 2  # every key sent twice
        start = time.monotonic()
        with ThreadPoolExecutor(max_workers=30) as pool:
            outs = list(pool.map(p.charge, batch))
        elapsed = time.monotonic() - start
    assert all(o.succeeded for o in outs)
    rows = operations(sandbox_dsn)
    assert len(rows) == 60 and {r[-1] for r in rows} == {2}
    assert elapsed < 120 * 0.05 / 3  # the latency overlaps across threads


def test_two_instances_create_the_schema_concurrently(sandbox_dsn: str) -> None:
    procs = [SandboxProcessor(sandbox_dsn) for _ in range(4)]
    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            outs = list(pool.map(lambda ip: ip[1].charge(attempt(200 + ip[0])), enumerate(procs)))
        assert all(o.succeeded for o in outs)
    finally:
        for p in procs:
            p.close()


def test_charge_many_records_a_batch_in_one_go(sandbox: SandboxProcessor, sandbox_dsn: str) -> None:
    sandbox.charge(attempt(300))
    batch = [attempt(n, route="fail" if n % 10 == 0 else "cus_ok") for n in range(300, 1300)]
    outs = sandbox.charge_many(batch)
    assert len(outs) == 1000
    assert outs[0] == Outcome(True, processor_ref="sandbox:payday-1-exchange-300")  # the first result
    assert [o.succeeded for o in outs[1:]] == [n % 10 != 0 for n in range(301, 1300)]
    assert len(operations(sandbox_dsn)) == 1000
    assert sandbox.credit_many([attempt(2000, kind="credit")])[0].succeeded
    assert sandbox.charge_many([]) == []


def test_charge_many_latency_is_once_per_batch(sandbox_dsn: str) -> None:
    with SandboxProcessor(sandbox_dsn, latency=0.2) as p:
        start = time.monotonic()
        p.charge_many([attempt(n) for n in range(50)])
        assert time.monotonic() - start < 0.2 * 5


def test_make_processor_builds_the_sandbox(sandbox_dsn: str) -> None:
    p = make_processor("sandbox", dsn=sandbox_dsn, latency=0.0)
    try:
        assert p.name == "sandbox" and p.charge(attempt(400)).succeeded
        assert "password" not in repr(p) and sandbox_dsn not in repr(p)
    finally:
        p.close()  # type: ignore[attr-defined]


def test_unreachable_database_is_a_clear_error() -> None:
    p = SandboxProcessor("host=127.0.0.1 port=1 dbname=nope user=nobody password=hunter2",
                         connect_timeout=1)
    with pytest.raises(ProcessorError, match="sandbox: cannot prepare its schema") as e:
        p.charge(attempt(1))
    assert "hunter2" not in repr(p) and "hunter2" not in str(e.value)
    p.close()


def test_prepare_connects_ahead_of_the_first_call(sandbox_dsn: str) -> None:
    """prepare() returns at once and connects in the background: a connection is open
    before any call, and the calls then work as without it."""
    with SandboxProcessor(sandbox_dsn) as p:
        p.prepare()
        p._pool.wait(timeout=10)  # what the first call would wait for
        assert p._pool.get_stats()["pool_size"] >= 1
        assert p.charge(attempt(400)).succeeded


def test_prepare_on_an_unreachable_database_leaves_the_clear_error() -> None:
    p = SandboxProcessor("host=127.0.0.1 port=1 dbname=nope user=nobody password=hunter2", connect_timeout=1)
    try:
        p.prepare()
        with pytest.raises(ProcessorError, match="sandbox: cannot prepare its schema") as e:
            p.charge(attempt(1))
        assert "hunter2" not in str(e.value)
    finally:
        p.close()
