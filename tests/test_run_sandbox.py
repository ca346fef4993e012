"""The orchestrator end to end against the real database and the sandbox processor.

The community is the demo's (payday.demo.seed): a dozen participants covering every
branch of SPEC section 4 (declined card, no funding source, unreviewed, suspicious,
not a merchant, declined payout, unclaimed stub, stopped tip).
"""
from __future__ import annotations

import logging
from decimal import Decimal as D
from typing import Any

import psycopg
import pytest

from payday.demo import seed
from payday.processors.base import Attempt, ProcessorError, TransientError
from payday.processors.sandbox import SandboxProcessor
from payday.run import EXIT_LOCKED, EXIT_PROCESSOR, LOCK_KEY, LockHeld, ProcessorFailure, Runner, run_payday

LOG = logging.getLogger("payday.tests")

EXPECTED_COUNTERS: dict[str, Any] = {
    "nparticipants": 10, "ntippers": 5, "ntips": 7, "ntransfers": 7, "transfer_volume": D("40.50"),
    "ncc_failing": 1, "ncc_missing": 1, "ncharges": 2, "charge_volume": D("36.81"),
    "charge_fees_volume": D("1.99"), "nachs": 2, "ach_volume": D("-65.90"), "ach_fees_volume": D("0.60"),
    "nach_failing": 1,
}
EXPECTED_BALANCES = {
    "alice": D("28.32"), "bob": D("1.00"), "carol": D("0.00"), "dave": D("0.00"), "eve": D("0.00"),
    "frank": D("0.00"), "grace": D("0.00"), "heidi": D("55.00"), "ivan": D("0.00"), "judy": D("94.00"),
    "mallory": D("0.00"), "oscar": D("15.00"),
}


def seeded(dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        seed(conn)


def state(db: psycopg.Connection) -> dict[str, Any]:
    """Everything a payday writes, in a comparable form (no ids, no timestamps)."""
    q = db.execute
    cols = ", ".join(EXPECTED_COUNTERS)
    return {
        "paydays": q(f"SELECT phase, {cols} FROM payday.paydays ORDER BY id").fetchall(),
        "participants": q(
            "SELECT username, balance, pending, last_bill_result, last_ach_result FROM payday.participants "
            "ORDER BY username"
        ).fetchall(),
        "exchanges": q(
            "SELECT participant, kind, amount, fee, processor, status, error FROM payday.exchanges "
            "ORDER BY participant, kind"
        ).fetchall(),
        "transfers": q("SELECT tipper, tippee, amount, context FROM payday.transfers ORDER BY tipper, tippee").fetchall(),
    }


def counters(db: psycopg.Connection, payday_id: int | None = None) -> dict[str, Any]:
    with db.cursor(row_factory=psycopg.rows.dict_row) as cur:
        if payday_id is None:
            row = cur.execute("SELECT * FROM payday.paydays ORDER BY id DESC LIMIT 1").fetchone()
        else:
            row = cur.execute("SELECT * FROM payday.paydays WHERE id = %s", (payday_id,)).fetchone()
    assert row is not None
    return {k: row[k] for k in EXPECTED_COUNTERS}


def sandbox_calls(db: psycopg.Connection) -> list[tuple[str, int]]:
    return db.execute("SELECT idempotency_key, calls FROM payday_sandbox.operations ORDER BY 1").fetchall()


def assert_expected_end(db: psycopg.Connection) -> None:
    assert counters(db) == EXPECTED_COUNTERS
    balances = dict(db.execute("SELECT username, balance FROM payday.participants").fetchall())
    assert balances == EXPECTED_BALANCES
    assert db.execute("SELECT * FROM payday.check()").fetchall() == []
    assert db.execute("SELECT count(*) FROM payday.exchanges WHERE status = 'pre'").fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM payday.participants WHERE pending IS NOT NULL").fetchone() == (0,)
    assert db.execute("SELECT phase FROM payday.paydays ORDER BY id DESC LIMIT 1").fetchone() == ("done",)
    # The sandbox saw each exchange exactly once: one operation per exchange, never resent.
    keys = db.execute("SELECT idempotency_key FROM payday.exchanges ORDER BY 1").fetchall()
    calls = sandbox_calls(db)
    assert [k for k, _ in calls] == [k for (k,) in keys]
    assert all(n == 1 for _, n in calls), calls


def backdate(db: psycopg.Connection, days: int = 7) -> None:
    """Move every payday `days` into the past, as if the week had gone by."""
    with db.transaction():
        db.execute("SET LOCAL session_replication_role = replica")  # skips paydays_written_by_functions
        db.execute(
            "UPDATE payday.paydays SET ts_start = ts_start - make_interval(days => %s), "
            "ts_end = CASE WHEN phase = 'done' THEN ts_end - make_interval(days => %s) ELSE ts_end END",
            (days, days),
        )


def run(dsn: str, **kw: Any):
    kw.setdefault("processor_override", "sandbox")
    return run_payday(dsn, log=LOG, **kw)


def test_full_sandbox_run(dsn: str, db: psycopg.Connection) -> None:
    seeded(dsn)
    res = run(dsn)
    assert res.status == "finished" and res.exit_code == 0
    assert res.payday_id == 1
    assert {k: res.counters[k] for k in EXPECTED_COUNTERS} == EXPECTED_COUNTERS
    assert_expected_end(db)
    # Outcomes as SPEC section 4 says: declined card and payout recorded, balance unchanged.
    rows = dict(
        ((u, k), (s, e)) for u, k, s, e in db.execute(
            "SELECT participant, kind, status, error FROM payday.exchanges"
        ).fetchall()
    )
    assert rows[("grace", "charge")][0] == "failed" and "declined" in rows[("grace", "charge")][1]
    assert rows[("oscar", "credit")][0] == "failed"
    assert ("heidi", "credit") not in rows  # not a merchant: skipped, no exchange
    assert {k for k, (s, _) in rows.items() if s == "succeeded"} == {
        ("alice", "charge"), ("mallory", "charge"), ("bob", "credit"), ("carol", "credit")
    }
    refs = db.execute("SELECT processor_ref FROM payday.exchanges WHERE status = 'succeeded'").fetchall()
    assert all(r and r.startswith("sandbox:") for (r,) in refs)


def test_serial_and_rate_limited_run_gives_the_same_result(dsn: str, db: psycopg.Connection) -> None:
    seeded(dsn)
    res = run(dsn, concurrency=1, rps=200.0)
    assert res.status == "finished"
    assert_expected_end(db)


def test_resume_after_intents_recorded_but_never_sent(dsn: str, db: psycopg.Connection) -> None:
    seeded(dsn)
    db.execute("SELECT payday.start()")
    assert db.execute("SELECT count(*) FROM payday.charge_intents('sandbox')").fetchone() == (3,)
    run(dsn)
    assert_expected_end(db)


def test_resume_after_a_charge_was_made_but_not_recorded(dsn: str, db: psycopg.Connection) -> None:
    """The crash window of SPEC section 5: the processor charged, the database never heard."""
    seeded(dsn)
    db.execute("SELECT payday.start()")
    db.execute("SELECT count(*) FROM payday.charge_intents('sandbox')")
    with db.cursor(row_factory=psycopg.rows.dict_row) as cur:
        row = cur.execute("SELECT * FROM payday.exchanges WHERE participant = 'mallory'").fetchone()
    assert row is not None
    with SandboxProcessor(dsn) as sandbox:
        assert sandbox.charge(Attempt.from_exchange(row)).succeeded
    run(dsn)
    assert_expected_end(db)  # found by lookup: calls == 1, not charged twice


def _drive_payin_by_hand(dsn: str, db: psycopg.Connection) -> None:
    """Phase payin done through the SQL functions and the sandbox, as a DBA would."""
    db.execute("SELECT payday.start()")
    db.execute("SELECT count(*) FROM payday.charge_intents('sandbox')")
    with db.cursor(row_factory=psycopg.rows.dict_row) as cur:
        pres = cur.execute("SELECT * FROM payday.pending_exchanges() ORDER BY id").fetchall()
    with SandboxProcessor(dsn) as sandbox:
        for row in pres:
            o = sandbox.charge(Attempt.from_exchange(row))
            db.execute("SELECT payday.charge_outcome(%s, %s, %s, %s)", (row["id"], o.succeeded, o.error, o.processor_ref))
    db.execute("SELECT * FROM payday.pay_tips()")


def test_resume_in_phase_clear(dsn: str, db: psycopg.Connection) -> None:
    seeded(dsn)
    _drive_payin_by_hand(dsn, db)
    assert db.execute("SELECT phase FROM payday.paydays").fetchone() == ("clear",)
    res = run(dsn)
    assert res.status == "finished" and res.payday_id == 1
    assert_expected_end(db)


def test_resume_with_a_credit_sent_but_not_recorded(dsn: str, db: psycopg.Connection) -> None:
    seeded(dsn)
    _drive_payin_by_hand(dsn, db)
    db.execute("SELECT payday.clear_pending()")
    (cid,) = db.execute("SELECT payday.credit_intent('carol', 'sandbox')").fetchone()  # type: ignore[misc]
    with db.cursor(row_factory=psycopg.rows.dict_row) as cur:
        row = cur.execute("SELECT * FROM payday.exchanges WHERE id = %s", (cid,)).fetchone()
    with SandboxProcessor(dsn) as sandbox:
        assert sandbox.credit(Attempt.from_exchange(row)).succeeded  # type: ignore[arg-type]
    run(dsn)
    assert_expected_end(db)


def test_second_runner_exits_with_the_lock_code(dsn: str, db: psycopg.Connection) -> None:
    seeded(dsn)
    with psycopg.connect(dsn, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        with pytest.raises(LockHeld) as err:
            run(dsn)
        assert err.value.exit_code == EXIT_LOCKED == 3
        assert "another payday runner" in str(err.value)
    assert db.execute("SELECT count(*) FROM payday.paydays").fetchone() == (0,)  # nothing started
    run(dsn)  # the lock is free again
    assert_expected_end(db)


def test_weekly_guard_and_force(dsn: str, db: psycopg.Connection) -> None:
    seeded(dsn)
    assert run(dsn).status == "finished"
    again = run(dsn)
    assert again.status == "skipped" and again.exit_code == 0 and again.payday_id == 1
    assert "less than 6 days ago" in again.message
    assert db.execute("SELECT count(*) FROM payday.paydays").fetchone() == (1,)
    forced = run(dsn, force=True)
    assert forced.status == "finished" and forced.payday_id == 2
    # A week later no --force is needed. (paydays is written only by the payday functions:
    # the trigger that enforces it is bypassed for this one edit of the test's clock.)
    backdate(db)
    later = run(dsn)
    assert later.status == "finished" and later.payday_id == 3
    assert db.execute("SELECT * FROM payday.check()").fetchall() == []


class _Flaky:
    """Wraps the sandbox: raises `exc` on the first charge of `who` (no batch API)."""

    def __init__(self, dsn: str, who: str, exc: Exception):
        self.inner = SandboxProcessor(dsn)
        self.who, self.exc, self.raised = who, exc, 0
        self.name = "sandbox"

    def charge(self, a: Attempt):
        if a.username == self.who and not self.raised:
            self.raised += 1
            raise self.exc
        return self.inner.charge(a)

    def credit(self, a: Attempt):
        return self.inner.credit(a)

    def lookup(self, a: Attempt):
        return self.inner.lookup(a)

    def is_merchant(self, route: str) -> bool:
        return self.inner.is_merchant(route)

    def close(self) -> None:
        self.inner.close()


def _runner(dsn: str, proc: Any) -> Runner:
    r = Runner(dsn, processor_override="sandbox", concurrency=4, rps=None, force=False, latency=0.0, log=LOG)
    r.processors["sandbox"] = proc
    return r


def test_processor_error_stops_the_run_and_the_next_run_reconciles(dsn: str, db: psycopg.Connection) -> None:
    seeded(dsn)
    with pytest.raises(ProcessorFailure) as err:
        _runner(dsn, _Flaky(dsn, "mallory", ProcessorError("sandbox: misconfigured"))).run()
    assert err.value.exit_code == EXIT_PROCESSOR == 5
    assert "mallory" in str(err.value) and "\n" not in str(err.value)
    statuses = dict(db.execute("SELECT participant, status FROM payday.exchanges").fetchall())
    assert statuses == {"alice": "succeeded", "grace": "failed", "mallory": "pre"}
    assert db.execute("SELECT phase FROM payday.paydays").fetchone() == ("payin",)
    run(dsn)
    assert_expected_end(db)


def test_transient_error_is_retried_with_the_same_key(dsn: str, db: psycopg.Connection) -> None:
    seeded(dsn)
    flaky = _Flaky(dsn, "alice", TransientError("sandbox: timeout"))
    res = _runner(dsn, flaky).run()
    assert res.status == "finished" and flaky.raised == 1
    assert_expected_end(db)


def test_streams_share_one_read_connection(dsn: str, db: psycopg.Connection) -> None:
    """The runner's streams reuse one read connection, one after the other, also after a
    stream left early or failed; a stream opened while another is open gets its own; a
    connection lost is replaced by the next stream."""
    r = Runner(dsn, processor_override="sandbox", concurrency=1, rps=None, force=False, latency=0.0, log=LOG)
    q = "SELECT g AS n FROM generate_series(1, 2500) g"
    try:
        assert sum(row["n"] for row in r._stream(q)) == 2500 * 2501 // 2
        first = r.reader
        assert first is not None and not first.closed
        outer = r._stream(q, size=10)
        assert next(outer)["n"] == 1
        assert [row["n"] for row in r._stream("SELECT 7 AS n")] == [7]  # nested: a connection of its own
        assert r.reader is first
        outer.close()  # left early: the connection is kept, its transaction ended
        assert r.reader is first and first.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        assert [row["n"] for row in r._stream("SELECT 1 AS n")] == [1] and r.reader is first
        with pytest.raises(psycopg.errors.DivisionByZero):
            list(r._stream("SELECT 1 / 0 AS n"))
        assert r.reader is first and not first.closed  # a failed query: rolled back, kept
        first.close()  # a lost connection: the next stream opens a new one
        assert [row["n"] for row in r._stream("SELECT 2 AS n")] == [2]
        assert r.reader is not None and r.reader is not first
    finally:
        if r.reader is not None:
            r.reader.close()


def _runner_connections(db: psycopg.Connection) -> int:
    """The runner's backends still there, waited for up to 5 s (a backend exits a moment
    after its client has closed the connection)."""
    import time

    for _ in range(100):
        row = db.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                         "AND application_name = 'payday' AND pid <> pg_backend_pid()").fetchone()
        if row == (0,):
            return 0
        time.sleep(0.05)
    return int(row[0]) if row else -1


def test_the_streams_connection_is_opened_while_the_payday_starts(
        dsn: str, db: psycopg.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    """The streams' connection is opened in a thread of its own while the pre-flight check and
    start() run, and the streams use it; a run that needs no stream (skipped: a payday
    finished this week) closes it. No connection of the runner outlives a run."""
    import threading

    import payday.run as prun

    opened: list[tuple[str, bool]] = []
    connect = prun.connect

    def counting(*a: Any, **kw: Any) -> psycopg.Connection:
        opened.append((threading.current_thread().name, kw.get("autocommit", True)))
        return connect(*a, **kw)

    monkeypatch.setattr(prun, "connect", counting)
    seeded(dsn)
    assert run(dsn).status == "finished"
    assert [name for name, autocommit in opened if not autocommit] == ["payday-warm"]  # the streams' one
    assert _runner_connections(db) == 0
    opened.clear()
    assert run(dsn).status == "skipped"
    assert [name for name, autocommit in opened if not autocommit] == ["payday-warm"]
    assert _runner_connections(db) == 0
    assert_expected_end(db)


def test_the_tip_transfers_indexes_are_built_on_the_side(
        dsn: str, db: psycopg.Connection, caplog: pytest.LogCaptureFixture) -> None:
    seeded(dsn)
    with caplog.at_level(logging.INFO, logger=LOG.name):
        assert run(dsn).status == "finished"
    assert "tip transfers' indexes: 3 built" in caplog.text
    assert db.execute("SELECT count(*) FROM pg_index WHERE indrelid = 'payday.transfers_payday_1'::regclass "
                      "AND indisvalid").fetchone() == (4,)
    assert _runner_connections(db) == 0


def test_a_failed_side_build_of_the_indexes_is_left_to_finish(
        dsn: str, db: psycopg.Connection, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Nothing depends on the side build: when it fails, the run logs it and finish() builds
    the indexes before its checks."""
    import threading

    import payday.run as prun

    connect = prun.connect

    def failing_on_the_side(*a: Any, **kw: Any) -> psycopg.Connection:
        if threading.current_thread().name == "payday-index":
            raise prun.DatabaseUnreachable("cannot connect to the database: test")
        return connect(*a, **kw)

    monkeypatch.setattr(prun, "connect", failing_on_the_side)
    seeded(dsn)
    with caplog.at_level(logging.INFO, logger=LOG.name):
        assert run(dsn).status == "finished"
    assert "building the tip transfers' indexes on the side failed (cannot connect" in caplog.text
    assert "indexes: 3 built" not in caplog.text
    assert db.execute("SELECT count(*) FROM pg_index WHERE indrelid = 'payday.transfers_payday_1'::regclass "
                      "AND indisvalid").fetchone() == (4,)
    assert_expected_end(db)
