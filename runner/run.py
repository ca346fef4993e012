"""The payday orchestrator: calls processors, lets SQL functions do the money rules.

`run_payday()` runs or resumes the open payday, phase by phase (`payday.paydays.phase`):

* payin:  reconcile every `pre` exchange (lookup by key; charge again with the same
  key when the processor never saw it), then `payday.charge_intents()` and one
  processor call per new intent (bounded thread pool, optional requests/second
  ceiling, transient errors retried with the same key), outcomes recorded in batches
  by `payday.record_outcomes()` in a background thread while the calls go on; then
  `payday.pay_tips()`.
* clear:  `payday.clear_pending()`. From this phase on (the tips are paid),
  `payday.index_tip_transfers()` builds the tip transfers' tipper, tippee and payday_id
  indexes on a connection of its own in a thread, while the clear and the payout run;
  the runner waits for it before `finish()`, which builds whatever is still missing.
* payout: reconcile `pre` credits, then stream `payday.credits_due()` in batches of
  CREDIT_BATCH: merchant checks (concurrent, or one is_merchant_many() request), one `payday.credit_intents()` call for the
  batch's merchants (a name no longer due is left out and logged), credits, outcomes
  recorded in batches; then `payday.finish()`.

Every processor call is preceded by a committed `pre` exchange and followed by its
outcome, so a crash at any instant leaves at most some `pre` rows that the next run
reconciles before anything new is charged (SPEC section 5).

Test hook (crash tests only, inert when unset): ``PAYDAY_TEST_KILL_AT=<point>[:<n>]``
makes the runner SIGKILL itself (a real ``kill -9``, not an exception) the n-th time
(default 1) it reaches ``<point>``, so tests can crash it at exact places:

* ``after_start``: payday opened or resumed (nothing charged by this run yet);
* ``after_intents``: charge intents committed, no processor call yet;
* ``charge.before_call`` / ``charge.after_call`` and ``credit.before_call`` /
  ``credit.after_call``: in a pool thread, right before the processor call and right
  after it answered (outcome not recorded). One processor call per job, or per
  micro-batch with a batch API (the sandbox's ``charge_many``): then n counts batches.
  A reconciling job may look its key up before ``before_call``;
* ``after_record``: a batch of outcomes committed by ``payday.record_outcomes()`` (in the
  recorder thread: processor calls may be going on meanwhile);
* ``before_pay_tips``, ``during_pay_tips`` (the ``pay_tips()`` query sent to the server,
  its result never read: the server may still commit it), ``after_pay_tips``;
* ``after_clear``; ``before_credit_intent`` / ``after_credit_intent`` (around each
  ``credit_intents()`` call, one per batch); ``before_finish``; ``after_finish``.
"""
from __future__ import annotations

import importlib
import logging
import os
import signal
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable, Generator, Iterable, Iterator

import psycopg
from psycopg.rows import dict_row

from payday.config import redact

# Exit codes (documented in docs/cli.md).
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_LOCKED = 3
EXIT_DATABASE = 4
EXIT_PROCESSOR = 5
EXIT_INVARIANT = 6

# Session-level advisory lock held by the one runner working on payday:
# the bytes b"payday\x00\x01" read as a big-endian bigint.
LOCK_KEY = 8097887077027872769

FLUSH_EVERY = 1000  # outcomes per record_outcomes() call
FLUSH_SECONDS = 1.0  # ... or at least this often
PROGRESS_SECONDS = 5.0
CREDIT_BATCH = 1000  # credits_due rows per merchant-check / intent batch
OWN_PROCESSORS = ("balanced", "stripe")  # what payday.charges_due() names without an override
PAY_TIPS_ATTEMPTS = 3  # pay_tips() refuses (40001) when a participant is renamed while it runs
# Exchanges per call to a processor with a batch API (the sandbox's charge_many...): a known
# number of exchanges is spread over the calls in flight, between these bounds.
MICRO_BATCH = 50
MAX_MICRO_BATCH = 500


def micro_batch_size(expected: int | None, concurrency: int) -> int:
    """Exchanges per batch-API call when about `expected` of them are on their way (None:
    not known): two calls per worker for the lot (the runner keeps two calls per worker in
    flight), at least MICRO_BATCH, at most MAX_MICRO_BATCH. A crash loses at most the
    outcomes of the calls in flight, which the next run looks up (SPEC 5)."""
    if not expected or concurrency < 1:
        return MICRO_BATCH
    return max(MICRO_BATCH, min(MAX_MICRO_BATCH, -(-expected // (2 * concurrency))))


def _kill_at(value: str | None) -> tuple[str, int] | None:
    """Parse PAYDAY_TEST_KILL_AT (see the module docstring)."""
    if not value:
        return None
    name, _, n = value.partition(":")
    return name, int(n or 1)


_KILL_AT = _kill_at(os.environ.get("PAYDAY_TEST_KILL_AT"))
_kill_seen: dict[str, int] = {}
_kill_lock = threading.Lock()


def _crash_point(name: str, conn: psycopg.Connection | None = None, query: bytes | None = None) -> None:
    """Test hook: SIGKILL this process at the configured point (a no-op when unset).
    With `query`, first send it on `conn` without reading the result."""
    if _KILL_AT is None or _KILL_AT[0] != name:
        return
    with _kill_lock:
        _kill_seen[name] = _kill_seen.get(name, 0) + 1
        if _kill_seen[name] != _KILL_AT[1]:
            return
        if conn is not None and query is not None:
            conn.pgconn.send_query(query)
            while conn.pgconn.flush():
                pass
        os.kill(os.getpid(), signal.SIGKILL)


class RunError(Exception):
    """An error the CLI reports as one line with `exit_code`."""

    exit_code = EXIT_ERROR


class LockHeld(RunError):
    exit_code = EXIT_LOCKED


class DatabaseUnreachable(RunError):
    exit_code = EXIT_DATABASE


class ProcessorFailure(RunError):
    exit_code = EXIT_PROCESSOR


class InvariantViolation(RunError):
    exit_code = EXIT_INVARIANT


def connect(dsn: str, *, autocommit: bool = True, **kw: Any) -> psycopg.Connection:
    """psycopg.connect, with connection failures turned into DatabaseUnreachable."""
    try:
        return psycopg.connect(dsn, autocommit=autocommit, application_name="payday", **kw)
    except (psycopg.OperationalError, psycopg.ProgrammingError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DatabaseUnreachable(f"cannot connect to the database: {redact(first)}") from e


def sql_error(e: psycopg.Error) -> RunError:
    """Map a database error to a one-line RunError with the right exit code."""
    diag = getattr(e, "diag", None)
    state = getattr(e, "sqlstate", None) or ""
    msg = (diag.message_primary if diag and diag.message_primary else str(e)).strip()
    msg = redact(msg.splitlines()[0] if msg else type(e).__name__)
    if state in ("42P01", "3F000", "42883") and "payday" in msg:
        return DatabaseUnreachable(f"this database has no (or an old) payday schema ({msg}): run `payday migrate`")
    if state in ("PD002", "PD004"):
        return InvariantViolation(f"invariant violation ({state}): {msg}")
    if isinstance(e, psycopg.OperationalError) and not state:
        return DatabaseUnreachable(f"lost the database connection: {msg}")
    return RunError(f"database error ({state or 'no SQLSTATE'}): {msg}")


@dataclass
class RunResult:
    payday_id: int | None
    status: str  # "finished" | "skipped"
    message: str = ""
    counters: dict[str, Any] = field(default_factory=dict)
    exit_code: int = EXIT_OK


@dataclass
class _Job:
    """One processor call: an exchange (already recorded `pre`) and what to do."""

    exchange_id: int
    key: str
    payday_id: int
    username: str
    route: str | None
    kind: str  # "charge" | "credit"
    cents: int
    processor: str
    reconcile: bool  # look the key up before calling


_JOB_COLUMNS = "id, idempotency_key, payday_id, participant, route, kind, amount, fee, processor"


def _job(r: dict[str, Any], reconcile: bool) -> _Job:
    """The job of an exchange row (the columns _JOB_COLUMNS)."""
    return _Job(
        r["id"], r["idempotency_key"], r["payday_id"], r["participant"], r["route"], r["kind"],
        exchange_cents(r["kind"], r["amount"], r["fee"]), r["processor"], reconcile,
    )


def exchange_cents(kind: str, amount: Decimal, fee: Decimal) -> int:
    """Cents sent to the processor: charge_amount for a charge, credit_amount for a credit."""
    value = (amount + fee) if kind == "charge" else -amount
    cents = value * 100
    if cents != cents.to_integral_value() or cents <= 0:
        raise RunError(f"exchange amount {value} is not a positive whole number of cents")
    return int(cents)


class _Outcomes:
    """Buffers outcomes and records them with payday.record_outcomes() on the writer
    connection, in a background thread: the processor calls go on while a batch is being
    recorded (one batch at a time; its error is raised by the next flush)."""

    def __init__(self, conn: psycopg.Connection, recorder: ThreadPoolExecutor):
        self.conn, self.recorder = conn, recorder
        self.ids: list[int] = []
        self.ok: list[bool] = []
        self.errors: list[str | None] = []
        self.refs: list[str | None] = []
        self.last = time.monotonic()
        self.recording: Future[None] | None = None
        self.succeeded = 0
        self.failed = 0

    def add(self, job: _Job, succeeded: bool, error: str | None, ref: str | None) -> None:
        self.ids.append(job.exchange_id)
        self.ok.append(bool(succeeded))
        self.errors.append(None if succeeded else (error or "declined by the processor"))
        self.refs.append(ref)
        if succeeded:
            self.succeeded += 1
        else:
            self.failed += 1

    def maybe_flush(self) -> None:
        if len(self.ids) >= FLUSH_EVERY or (self.ids and time.monotonic() - self.last >= FLUSH_SECONDS):
            self.flush()

    def flush(self, wait: bool = False) -> None:
        """Hands the buffer to the recorder once the previous batch is recorded; with
        `wait`, returns only when everything added so far is recorded."""
        self.last = time.monotonic()
        self._wait()
        if self.ids:
            batch = (self.ids, self.ok, self.errors, self.refs)
            self.ids, self.ok, self.errors, self.refs = [], [], [], []
            self.recording = self.recorder.submit(self._record, batch)
        if wait:
            self._wait()

    def _wait(self) -> None:
        if self.recording is not None:
            fut, self.recording = self.recording, None
            fut.result()

    def _record(self, batch: tuple[list[Any], ...]) -> None:
        try:
            self.conn.execute(
                # Arrays in binary (%b): a third of the client's time of array literals.
                "SELECT payday.record_outcomes(%b::bigint[], %b::boolean[], %b::text[], %b::text[])", batch
            )
        except psycopg.Error as e:
            raise sql_error(e) from e
        _crash_point("after_record")


class _Progress:
    def __init__(self, log: logging.Logger, label: str, total: int | None):
        self.log, self.label, self.total = log, label, total
        self.done = 0
        self.t0 = self.last = time.monotonic()

    def tick(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if now - self.last >= PROGRESS_SECONDS:
            self.last = now
            self.log.info("%s: %s", self.label, self.line())

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.t0, 1e-9)
        of = f"/{self.total}" if self.total is not None else ""
        return f"{self.done}{of} done, {self.done / elapsed:.1f}/s, {elapsed:.1f}s"


class Runner:
    def __init__(
        self,
        dsn: str,
        *,
        processor_override: str | None,
        concurrency: int,
        rps: float | None,
        force: bool,
        latency: float,
        log: logging.Logger,
    ):
        if concurrency < 1:
            raise RunError("concurrency must be at least 1")
        if processor_override not in (None, "sandbox"):
            raise RunError(f"unknown processor override {processor_override!r} (only 'sandbox')")
        self.dsn = dsn
        self.override = processor_override
        self.concurrency = concurrency
        self.rps = rps
        self.force = force
        self.latency = latency
        self.log = log
        self.processors: dict[str, Any] = {}
        self.limiter: Any = None
        self.conn: psycopg.Connection | None = None  # the writer (main thread only)
        self.reader: psycopg.Connection | None = None  # the streams' (main thread only), see _stream
        self._streaming = False  # a stream is open on self.reader
        self._warmer: threading.Thread | None = None  # see _warm_up
        self._warm_reader: psycopg.Connection | None = None
        self._indexer: threading.Thread | None = None  # see _index_tip_transfers
        self._indexer_error: Exception | None = None

    # -- processors ---------------------------------------------------------------

    def processor(self, name: str) -> Any:
        if name not in self.processors:
            if name == "manual":
                raise RunError(
                    "a 'manual' exchange is still pre: record its outcome by hand with "
                    "payday.charge_outcome()/credit_outcome(), then rerun"
                )
            try:
                self.processors[name] = _make_processor(name, self.dsn, self.latency)
                prepare = getattr(self.processors[name], "prepare", None)
                if callable(prepare):
                    prepare()  # e.g. the sandbox starts connecting while the intents are computed
            except RunError:
                raise
            except Exception as e:
                raise ProcessorFailure(f"processor {name} is not usable: {redact(_one_line(e))}") from e
            self.log.info("processor %s ready", name)
        return self.processors[name]

    def _call(self, fn: Callable[[], Any]) -> Any:
        """One processor request (not a charge/credit): rate limited, transient errors retried."""
        from payday.processors import retry

        def limited() -> Any:
            if self.limiter is not None:
                self.limiter.acquire()
            return fn()

        return retry.call_with_retry(limited)

    def _work(self, jobs: list[_Job]) -> tuple[list[tuple[_Job, Any]], BaseException | None]:
        """Runs in a pool thread: the outcomes of some jobs (one processor, one kind), and
        the error that stopped the rest, if any (those stay `pre`).

        One job: retry.perform, which retries transient errors with the same key and looks
        the key up first when reconciling or after an ambiguous failure. Several jobs (only
        for processors with a batch API, e.g. the sandbox): one lookup_many/charge_many
        call; if that fails, each job goes through retry.perform with a lookup first."""
        from payday.processors import retry

        proc = self.processors[jobs[0].processor]
        done: list[tuple[_Job, Any]] = []
        try:
            if len(jobs) > 1:
                try:
                    return self._work_batch(proc, jobs), None
                except Exception as e:
                    self.log.warning("batch of %d %ss failed (%s); one by one", len(jobs), jobs[0].kind, _one_line(e))
            for job in jobs:
                _crash_point(f"{job.kind}.before_call")
                o = retry.perform(proc, _attempt(job), resume=job.reconcile or len(jobs) > 1, limiter=self.limiter)
                _crash_point(f"{job.kind}.after_call")
                done.append((job, o))
        except Exception as e:
            return done, e
        return done, None

    def _work_batch(self, proc: Any, jobs: list[_Job]) -> list[tuple[_Job, Any]]:
        attempts = [_attempt(j) for j in jobs]
        found: list[Any] = [None] * len(jobs)
        if any(j.reconcile for j in jobs):
            if self.limiter is not None:
                self.limiter.acquire()
            found = list(proc.lookup_many(attempts))
        todo = [i for i, o in enumerate(found) if o is None]
        if todo:
            if self.limiter is not None:
                self.limiter.acquire()
            batch = getattr(proc, f"{jobs[0].kind}_many")
            _crash_point(f"{jobs[0].kind}.before_call")
            outcomes = batch([attempts[i] for i in todo])
            _crash_point(f"{jobs[0].kind}.after_call")
            for i, o in zip(todo, outcomes):
                found[i] = o
        return list(zip(jobs, found))

    def _batch_size(self, processor: str, kind: str, expected: int | None) -> int:
        proc = self.processors[processor]
        ok = all(callable(getattr(proc, f, None)) for f in (f"{kind}_many", "lookup_many"))
        return micro_batch_size(expected, self.concurrency) if ok else 1

    # -- the pipeline ---------------------------------------------------------------

    def _tasks(self, jobs: Iterator[_Job], expected: int | None = None) -> Iterator[list[_Job]]:
        """Groups consecutive jobs of one processor and kind into micro-batches (sized for
        `expected` jobs, see micro_batch_size)."""
        group: list[_Job] = []
        size = 1
        for job in jobs:
            self.processor(job.processor)  # built here, in the main thread; may raise
            if group and (job.processor, job.kind, job.reconcile) != (group[0].processor, group[0].kind, group[0].reconcile):
                yield group
                group = []
            if not group:
                size = self._batch_size(job.processor, job.kind, expected)
            group.append(job)
            if len(group) >= size:
                yield group
                group = []
        if group:
            yield group

    def _process(self, pool: ThreadPoolExecutor, jobs: Iterable[_Job], label: str, total: int | None,
                 expected: int | None = None) -> _Outcomes:
        """Runs jobs concurrently, records outcomes in batches; stops on a processor failure.
        `expected`: how many jobs come at a time (default `total`), for the micro-batch size."""
        from payday.processors.base import ProcessorError, TransientError

        assert self.conn is not None
        recorder = ThreadPoolExecutor(1, thread_name_prefix="payday-record")
        outcomes = _Outcomes(self.conn, recorder)
        progress = _Progress(self.log, label, total)
        inflight: dict[Future[Any], list[_Job]] = {}
        stop: BaseException | None = None
        source = iter(jobs)
        tasks = self._tasks(source, expected or total)

        def collect(fut: Future[Any]) -> None:
            nonlocal stop
            task = inflight.pop(fut)
            if fut.cancelled():
                return
            results, err = fut.result()
            for job, o in results:
                outcomes.add(job, bool(o.succeeded), o.error, o.processor_ref)
                if not o.succeeded:
                    self.log.info("%s of %s failed: %s", job.kind, job.username, o.error)
            progress.tick(len(results))
            if err is not None and stop is None:
                job = task[len(results)] if len(results) < len(task) else task[-1]
                what = f"{job.processor} failed on {job.kind} {job.key} ({job.username})"
                if isinstance(err, (ProcessorError, TransientError)):
                    stop = ProcessorFailure(
                        f"{what}: {redact(_one_line(err))}; it stays pre and is reconciled on the next run"
                    )
                else:  # a bug, or an unknown outcome: leave it pre
                    stop = RunError(f"{what}: {type(err).__name__}: {redact(_one_line(err))}")

        try:
            exhausted = False
            while True:
                while not exhausted and stop is None and len(inflight) < self.concurrency * 2:
                    task = next(tasks, None)
                    if task is None:
                        exhausted = True
                        break
                    inflight[pool.submit(self._work, task)] = task
                if not inflight:
                    break
                done, _ = wait(list(inflight), timeout=FLUSH_SECONDS, return_when=FIRST_COMPLETED)
                for fut in done:
                    collect(fut)
                outcomes.maybe_flush()
        finally:
            if inflight:  # interrupted: drop what has not started, keep what has finished
                for fut in list(inflight):
                    fut.cancel()
                wait(list(inflight), timeout=30)
                for fut in list(inflight):
                    if fut.done():
                        collect(fut)
            try:
                outcomes.flush(wait=True)
            finally:
                recorder.shutdown()
                close = getattr(source, "close", None)
                if callable(close):
                    close()
        if progress.done or total:
            self.log.info(
                "%s: %s (%d succeeded, %d failed)", label, progress.line(), outcomes.succeeded, outcomes.failed
            )
        if stop is not None:
            raise stop
        return outcomes

    def _stream(self, query: str, params: tuple[Any, ...] = (), size: int = 1000) -> Generator[dict[str, Any], None, None]:
        """Rows of a query through a server-side cursor on a separate read connection. That
        connection is kept for the run's next stream (a new one is a server process started
        and its caches filled again); a stream started while another is open gets one of
        its own, and a connection that cannot be rolled back is closed (the next stream
        opens another)."""
        shared = not self._streaming
        if not shared:
            reader = connect(self.dsn, autocommit=False, row_factory=dict_row)
        else:
            if self.reader is None or self.reader.closed:
                self.reader = self._take_warm_reader() or connect(self.dsn, autocommit=False, row_factory=dict_row)
            reader, self._streaming = self.reader, True
        try:
            with reader.cursor(name="payday_stream") as cur:
                cur.itersize = size
                cur.execute(query, params)
                yield from cur
        finally:
            try:
                reader.rollback()  # also when the caller stopped reading early
            except Exception:
                reader.close()  # a shared one is replaced by the next stream (see above)
            if shared:
                self._streaming = False
            else:
                reader.close()

    def _warm_up(self) -> None:
        """In a thread, while the pre-flight check and start() run on the server: imports the
        modules of the processors the run builds and opens the streams' connection, two
        things the run otherwise waited for on its way to the first charge. Nothing depends
        on it: should it fail, the run imports and connects when it needs to."""

        def warm() -> None:
            try:
                for name in (self.override,) if self.override else OWN_PROCESSORS:
                    importlib.import_module(f"payday.processors.{name}")
                self._warm_reader = connect(self.dsn, autocommit=False, row_factory=dict_row)
            except Exception:
                pass

        self._warmer = threading.Thread(target=warm, name="payday-warm", daemon=True)
        self._warmer.start()

    def _take_warm_reader(self) -> psycopg.Connection | None:
        """The connection _warm_up opened, once (None when it did not)."""
        if self._warmer is not None:
            self._warmer.join()
            self._warmer = None
        conn, self._warm_reader = self._warm_reader, None
        return conn

    def _pending_jobs(self, kind: str, reconcile: bool) -> Iterator[_Job]:
        q = f"SELECT {_JOB_COLUMNS} FROM payday.pending_exchanges() WHERE kind = %s ORDER BY id"
        for r in self._stream(q, (kind,)):
            yield _job(r, reconcile)

    def _count_pending(self, kind: str) -> int:
        assert self.conn is not None
        row = self.conn.execute(
            "SELECT count(*) FROM payday.pending_exchanges() WHERE kind = %s", (kind,)
        ).fetchone()
        return int(row[0]) if row else 0

    def _reconcile(self, pool: ThreadPoolExecutor, kind: str) -> None:
        n = self._count_pending(kind)
        if n:
            self.log.info("reconciling %d pre %s exchange(s) left by an earlier run", n, kind)
            self._process(pool, self._pending_jobs(kind, reconcile=True), f"reconcile {kind}s", n)

    # -- phases -------------------------------------------------------------------------

    def payin(self, pool: ThreadPoolExecutor) -> None:
        assert self.conn is not None
        self._reconcile(pool, "charge")
        self._charge_processors()
        row = self.conn.execute("SELECT count(*) FROM payday.charge_intents(%s)", (self.override,)).fetchone()
        n = int(row[0]) if row else 0
        _crash_point("after_intents")
        self.log.info("payin: %d charge(s) due", n)
        if n:
            self._process(pool, self._pending_jobs("charge", reconcile=False), "charges", n)
        _crash_point("before_pay_tips")
        _crash_point("during_pay_tips", self.conn, b"SELECT * FROM payday.pay_tips()")
        r = self._pay_tips()
        _crash_point("after_pay_tips")
        self.log.info("tips paid: %s", _fmt(r))

    def _charge_processors(self) -> None:
        """Build the processors the charges need before recording any intent: a missing key
        then stops the run without leaving `pre` rows bound to a processor it cannot reach.
        With an override that is the one processor. Otherwise every processor a charge can
        go to is built; only when one cannot be, does the runner ask which are needed (a
        pass over every due tip, 7.8 s at 1M participants) and stop if that one is."""
        assert self.conn is not None
        if self.override:
            self.processor(self.override)
            return
        unusable: dict[str, ProcessorFailure] = {}
        for name in OWN_PROCESSORS:
            try:
                self.processor(name)
            except ProcessorFailure as e:
                unusable[name] = e
        if unusable:
            needed = {name for (name,) in self.conn.execute("SELECT DISTINCT processor FROM payday.charges_due()")}
            for name, failure in unusable.items():
                if name in needed:
                    raise failure

    def _pay_tips(self) -> dict[str, Any] | None:
        """payday.pay_tips(), called again when it refused because a participant it pays was
        renamed or removed while it ran (40001: it wrote nothing)."""
        assert self.conn is not None
        for attempt in range(1, PAY_TIPS_ATTEMPTS + 1):
            try:
                with self.conn.cursor(row_factory=dict_row) as cur:
                    return cur.execute("SELECT * FROM payday.pay_tips()").fetchone()
            except psycopg.errors.SerializationFailure as e:
                if attempt == PAY_TIPS_ATTEMPTS:
                    raise
                self.log.warning("pay_tips() refused (%s); calling it again", _one_line(e))
        return None

    def clear(self) -> None:
        assert self.conn is not None
        row = self.conn.execute("SELECT payday.clear_pending()").fetchone()
        _crash_point("after_clear")
        self.log.info("pending cleared for %s participant(s)", row[0] if row else 0)

    def _credit_jobs(self, pool: ThreadPoolExecutor, skipped: list[int]) -> Iterator[_Job]:
        assert self.conn is not None
        name = self.override or "balanced"
        rows = self._stream("SELECT username, payout, credit_amount, route FROM payday.credits_due()")
        try:
            yield from self._credit_batches(pool, rows, name, skipped)
        finally:
            rows.close()

    def _credit_batches(
        self, pool: ThreadPoolExecutor, rows: Iterator[dict[str, Any]], name: str, skipped: list[int]
    ) -> Iterator[_Job]:
        while True:
            batch = [r for _, r in zip(range(CREDIT_BATCH), rows)]
            if not batch:
                return
            proc = self.processor(name)
            due: list[str] = []
            for r, merchant in zip(batch, self._merchants(pool, proc, name, batch)):
                if merchant:
                    due.append(r["username"])
                else:
                    skipped[0] += 1
                    self.log.info("payout of %s to %s skipped: not a merchant at %s", r["payout"], r["username"], name)
            yield from self._credit_intents(due)

    def _merchants(self, pool: ThreadPoolExecutor, proc: Any, name: str, batch: list[dict[str, Any]]) -> list[bool]:
        """Whether each row's route is a merchant: one is_merchant_many() request when the
        processor has it (the sandbox), else one is_merchant() request per route in the pool."""
        from payday.processors.base import ProcessorError, TransientError

        many = getattr(proc, "is_merchant_many", None)
        routes = [r["route"] for r in batch]
        who = f"the batch from {batch[0]['username']}"
        try:
            if callable(many):
                found = [bool(m) for m in self._call(lambda: many(routes))]
                if len(found) != len(routes):
                    raise ProcessorError(f"is_merchant_many answered {len(found)} of {len(routes)} routes")
                return found
            out: list[bool] = []
            for r, fut in zip(batch, [pool.submit(self._is_merchant, proc, route) for route in routes]):
                who = r["username"]
                out.append(fut.result())
            return out
        except (ProcessorError, TransientError) as e:
            raise ProcessorFailure(f"{name} merchant check failed for {who}: {redact(_one_line(e))}") from e

    def _is_merchant(self, proc: Any, route: str) -> bool:
        return bool(self._call(lambda: proc.is_merchant(route)))

    def _credit_intents(self, usernames: list[str]) -> list[_Job]:
        """The pre credits of a batch, recorded by one payday.credit_intents() call. A name
        no longer due (its obligations grew since credits_due() listed it) is left out."""
        assert self.conn is not None
        if not usernames:
            return []
        _crash_point("before_credit_intent")
        try:
            with self.conn.cursor(row_factory=dict_row) as cur:
                rows = cur.execute(
                    f"SELECT {_JOB_COLUMNS} FROM payday.credit_intents(%b::text[], %s)", (usernames, self.override)
                ).fetchall()
        except psycopg.Error as e:
            raise sql_error(e) from e
        _crash_point("after_credit_intent")
        returned = {r["participant"] for r in rows}
        for u in usernames:
            if u not in returned:
                self.log.info("payout of %s skipped: no longer due", u)
        return [_job(r, reconcile=False) for r in rows]

    def payout(self, pool: ThreadPoolExecutor) -> None:
        assert self.conn is not None
        self._reconcile(pool, "credit")
        skipped = [0]
        # No progress total: counting credits_due() first would be one more pass over every tip.
        self.log.info("payout started: credits_due() in batches of %d (merchant checks, then intents)", CREDIT_BATCH)
        self._process(pool, self._credit_jobs(pool, skipped), "credits", None, expected=CREDIT_BATCH)
        if skipped[0]:
            self.log.info("payout: %d participant(s) skipped (not a merchant)", skipped[0])

    def _index_tip_transfers(self, payday_id: int) -> None:
        """Starts payday.index_tip_transfers() for the payday, once per run, on a connection of
        its own in a thread: the tip transfers' tipper, tippee and payday_id indexes are
        built on the second core while the clear and the payout run. Nothing depends on it:
        finish() builds whatever is missing, so a failure here is only logged."""
        if self._indexer is not None:
            return

        def build() -> None:
            try:
                with connect(self.dsn, autocommit=True) as conn:
                    row = conn.execute("SELECT payday.index_tip_transfers(%s)", (payday_id,)).fetchone()
                self.log.info("tip transfers' indexes: %s built", row[0] if row else 0)
            except Exception as e:  # reported by _await_indexes
                self._indexer_error = e

        self._indexer = threading.Thread(target=build, name="payday-index", daemon=True)
        self._indexer.start()

    def _await_indexes(self) -> None:
        """Waits for the thread of _index_tip_transfers, if one was started; logs its failure."""
        if self._indexer is None:
            return
        self._indexer.join()
        if self._indexer_error is not None:
            self.log.warning("building the tip transfers' indexes on the side failed (%s); finish() builds them",
                             redact(_one_line(self._indexer_error)))
            self._indexer_error = None

    def finish(self) -> dict[str, Any]:
        assert self.conn is not None
        try:
            with self.conn.cursor(row_factory=dict_row) as cur:
                row = cur.execute("SELECT * FROM payday.finish()").fetchone()
        except psycopg.Error as e:
            if getattr(e, "sqlstate", None) == "PD004":
                raise InvariantViolation(f"payday.finish() refused to close: {_one_line(e)}") from e
            raise
        return dict(row or {})

    # -- the whole run ------------------------------------------------------------------

    def run(self) -> RunResult:
        self.conn = connect(self.dsn, autocommit=True)
        locked: Any = None
        try:
            locked = self.conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()
            if not (locked and locked[0]):
                raise LockHeld("another payday runner holds the lock on this database; not starting")
            self._warm_up()
            try:
                return self._run_locked()
            except psycopg.Error as e:
                raise sql_error(e) from e
        finally:
            try:
                # Unlock explicitly: a closed connection's backend lets go of its session
                # locks only when it exits, a moment after the client has moved on, and a
                # runner started right after this one would find the lock still held.
                if locked and locked[0] and not self.conn.closed:
                    self.conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
            except Exception:
                pass
            if self._indexer is not None:
                self._indexer.join()  # its own connection: not left building after the run
            for conn in (self.conn, self.reader, self._take_warm_reader()):
                try:
                    if conn is not None:
                        conn.close()
                except Exception:
                    pass
            for proc in self.processors.values():
                close = getattr(proc, "close", None)
                if callable(close):
                    try:
                        close()
                    except Exception:
                        pass

    def _refuse_on_violations(self) -> None:
        """InvariantViolation (exit 6) naming what payday.check_recent() reports, if anything: the
        invariants from the latest ledger mark (the last payday's close), not the whole history."""
        assert self.conn is not None
        rows = self.conn.execute("SELECT what, who, expected, actual FROM payday.check_recent()").fetchall()
        if rows:
            shown = "; ".join(f"{what} {who}: expected {exp}, actual {act}" for what, who, exp, act in rows[:5])
            more = f"; and {len(rows) - 5} more" if len(rows) > 5 else ""
            raise InvariantViolation(
                f"not starting a payday: payday.check_recent() reports {len(rows)} violation(s): {shown}{more} "
                "(SELECT * FROM payday.check_recent() lists them all)"
            )

    def _run_locked(self) -> RunResult:
        assert self.conn is not None
        with self.conn.cursor(row_factory=dict_row) as cur:
            last = cur.execute(
                "SELECT id, phase, ts_start, ts_end, ts_start > now() - interval '6 days' AS recent "
                "FROM payday.paydays ORDER BY id DESC LIMIT 1"
            ).fetchone()
        if last and last["phase"] == "done" and last["recent"] and not self.force:
            msg = (
                f"payday {last['id']} started {last['ts_start']:%Y-%m-%d %H:%M %Z} and finished "
                f"{last['ts_end']:%Y-%m-%d %H:%M %Z}, less than 6 days ago: nothing to do "
                "(--force to run another)"
            )
            self.log.info(msg)
            return RunResult(last["id"], "skipped", msg)
        if not last or last["phase"] == "done":
            self._refuse_on_violations()  # a new payday starts only on a consistent ledger
        with self.conn.cursor(row_factory=dict_row) as cur:
            pd = cur.execute("SELECT * FROM payday.start()").fetchone()
        assert pd is not None
        _crash_point("after_start")
        self.log.info("payday %s: started %s, phase %s", pd["id"], pd["ts_start"].isoformat(), pd["phase"])
        if self.rps:
            from payday.processors import retry

            self.limiter = retry.RateLimiter(self.rps)
        t0 = time.monotonic()
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="payday-proc") as pool:
            phase = pd["phase"]
            while phase != "done":
                self.log.info("phase %s", phase)
                if phase in ("clear", "payout"):
                    self._index_tip_transfers(pd["id"])  # the tips are paid: their indexes, on the side
                if phase == "payin":
                    self.payin(pool)
                elif phase == "clear":
                    self.clear()
                elif phase == "payout":
                    self.payout(pool)
                    self._await_indexes()
                    _crash_point("before_finish")
                    self.finish()
                    _crash_point("after_finish")
                else:
                    raise RunError(f"unknown payday phase {phase!r}")
                row = self.conn.execute("SELECT phase FROM payday.paydays WHERE id = %s", (pd["id"],)).fetchone()
                phase = row[0] if row else "done"
        with self.conn.cursor(row_factory=dict_row) as cur:
            final = cur.execute("SELECT * FROM payday.paydays WHERE id = %s", (pd["id"],)).fetchone() or {}
        counters = {k: v for k, v in final.items() if k not in ("id",)}
        msg = f"payday {pd['id']} finished in {time.monotonic() - t0:.1f}s: {_fmt(final, skip=('id', 'phase', 'ts_start', 'ts_end'))}"
        self.log.info(msg)
        return RunResult(pd["id"], "finished", msg, counters)


def run_payday(
    dsn: str,
    *,
    processor_override: str | None = None,
    concurrency: int = 8,
    rps: float | None = None,
    force: bool = False,
    latency: float = 0.0,
    log: logging.Logger | None = None,
) -> RunResult:
    """Run or resume the payday; see the module docstring. Raises RunError subclasses."""
    return Runner(
        dsn,
        processor_override=processor_override,
        concurrency=concurrency,
        rps=rps,
        force=force,
        latency=latency,
        log=log or logging.getLogger("payday"),
    ).run()


def _make_processor(name: str, dsn: str, latency: float) -> Any:
    from payday.processors import make_processor

    return make_processor(name, dsn=dsn, latency=latency if name == "sandbox" else 0.0)


def _attempt(job: _Job) -> Any:
    from payday.processors.base import Attempt

    return Attempt(job.exchange_id, job.key, job.payday_id, job.username, job.route or "", job.kind, job.cents)  # type: ignore[arg-type]


def _one_line(e: BaseException) -> str:
    diag = getattr(e, "diag", None)
    text = diag.message_primary if diag is not None and getattr(diag, "message_primary", None) else str(e)
    text = (text or type(e).__name__).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _fmt(row: Any, skip: tuple[str, ...] = ()) -> str:
    if row is None:
        return "-"
    items = row.items() if isinstance(row, dict) else enumerate(row)
    return ", ".join(f"{k}={v}" for k, v in items if k not in skip)
