"""The sandbox processor: no network, deterministic, remembers what it did.

* A charge or credit succeeds unless its route contains ``fail``; then it is a
  permanent failure with a clear error.
* Every route is a merchant unless it contains ``nomerchant``.
* ``latency`` seconds are slept per call (before anything is recorded), to rehearse
  or benchmark against a slow processor.

Its state lives in the database, in its own schema, written through its own
autocommit connections exactly as a remote processor would keep it -- so it survives
a SIGKILL of the runner and ``lookup`` works on the next run::

    payday_sandbox.operations(idempotency_key text PRIMARY KEY, kind, username, route,
                              cents bigint, succeeded bool, error text,
                              created timestamptz DEFAULT now(), calls int)

The schema is created on first use (``CREATE ... IF NOT EXISTS`` under an advisory
transaction lock). A repeated call with the same key returns the first result and
records no second operation; ``calls`` counts how many times the key was sent, so
tests can see a retry that should have been a lookup.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Sequence

import psycopg
from psycopg_pool import ConnectionPool

from .base import (Attempt, Kind, Outcome, ProcessorError, TransientError, one_line,
                   require_kind)

SCHEMA_DDL = """
CREATE SCHEMA IF NOT EXISTS payday_sandbox;
CREATE TABLE IF NOT EXISTS payday_sandbox.operations (
    idempotency_key text PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('charge', 'credit')),
    username        text NOT NULL,
    route           text NOT NULL,
    cents           bigint NOT NULL CHECK (cents > 0),
    succeeded       boolean NOT NULL,
    error           text CHECK (succeeded = (error IS NULL)),
    created         timestamptz NOT NULL DEFAULT now(),
    calls           integer NOT NULL DEFAULT 1
);
COMMENT ON TABLE payday_sandbox.operations IS
    'What the sandbox processor did: one row per idempotency key (calls: times it was sent).';
"""

# Two-int advisory keys live apart from the runner's single-bigint lock space.
_LOCK = "SELECT pg_advisory_xact_lock(hashtext('payday_sandbox'), 0)"

# Arrays go in binary (%b): psycopg writes a list of a thousand values in a third of the
# time it takes to spell them out as an array literal.
_RECORD = """
INSERT INTO payday_sandbox.operations AS o
       (idempotency_key, kind, username, route, cents, succeeded, error)
SELECT * FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[], %b::bigint[],
                     %b::boolean[], %b::text[])
ON CONFLICT (idempotency_key) DO UPDATE SET calls = o.calls + 1
RETURNING idempotency_key, kind, succeeded, error
"""

_LOOKUP = """
SELECT idempotency_key, kind, succeeded, error FROM payday_sandbox.operations
 WHERE idempotency_key = ANY(%b::text[])
"""


def decide(a: Attempt) -> Outcome:
    """What the sandbox answers for an attempt, before anything is recorded."""
    if "fail" in a.route:
        what = "card declined" if a.kind == "charge" else "bank account rejected the credit"
        return Outcome(False, error=f'{what} (sandbox: route contains "fail")')
    return Outcome(True)


class SandboxProcessor:
    name = "sandbox"

    # A call holds a connection only for its one statement, after the latency: two serve
    # a runner's 64 calls in flight (0.1 s latency: ~640 statements a second). Each more
    # is a server process started on the payday's own database server, which a remote
    # processor would not cost it (bench/README.md, twelfth round).
    POOL_SIZE = 2

    def __init__(self, dsn: str, latency: float = 0.0, *, pool_size: int = POOL_SIZE,
                 connect_timeout: float = 30.0) -> None:
        if latency < 0:
            raise ValueError("latency must be >= 0")
        self.latency = latency
        self._connect_timeout = connect_timeout
        self._pool = ConnectionPool(
            dsn, min_size=1, max_size=pool_size, open=False,
            kwargs={"autocommit": True, "application_name": "payday_sandbox"},
            timeout=connect_timeout,
        )
        self._ready = False
        self._ready_lock = threading.Lock()

    def __repr__(self) -> str:  # the DSN may hold a password: never show it
        return f"SandboxProcessor(latency={self.latency})"

    def close(self) -> None:
        self._pool.close()

    def __enter__(self) -> SandboxProcessor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def prepare(self) -> None:
        """Start connecting in the background and return at once (the runner calls it when
        it builds the processor, so the first call does not wait for a connection while the
        database computes the intents). The first call still waits until it is ready."""
        self._pool.open(wait=False)

    def _ensure_ready(self) -> None:
        with self._ready_lock:
            if self._ready:
                return
            try:
                self._pool.open(wait=True, timeout=self._connect_timeout)
                with self._pool.connection() as conn, conn.transaction():
                    # DDL only when missing: even CREATE ... IF NOT EXISTS needs CREATE on the
                    # database, which a least-privilege runner role does not have.
                    row = conn.execute("SELECT to_regclass('payday_sandbox.operations')").fetchone()
                    if row is None or row[0] is None:
                        conn.execute(_LOCK)
                        conn.execute(SCHEMA_DDL)
            except Exception as e:
                raise ProcessorError(f"sandbox: cannot prepare its schema: {one_line(e)}") from e
            self._ready = True

    def _record(self, attempts: Sequence[Attempt]) -> dict[str, Outcome]:
        decided = {a.idempotency_key: (a, decide(a)) for a in attempts}
        cols: list[list[object]] = [[] for _ in range(7)]
        for key, (a, o) in decided.items():
            for col, value in zip(cols, (key, a.kind, a.username, a.route, a.cents,
                                         o.succeeded, o.error)):
                col.append(value)
        rows = self._query(_RECORD, cols)
        return {key: self._outcome(key, kind, decided[key][0].kind, ok, err)
                for key, kind, ok, err in rows}

    def _query(self, sql: str, params: Sequence[object]) -> list[tuple[Any, ...]]:
        try:
            with self._pool.connection() as conn:
                return conn.execute(sql, params).fetchall()
        except psycopg.OperationalError as e:  # the "network" to the processor
            raise TransientError(f"sandbox: database unavailable: {one_line(e)}") from e

    @staticmethod
    def _outcome(key: str, kind: str, expected: str, ok: bool, err: str | None) -> Outcome:
        if kind != expected:
            raise ProcessorError(f"sandbox: key {key} was recorded as a {kind}, not a {expected}")
        return Outcome(ok, error=err, processor_ref=f"sandbox:{key}")

    def _do(self, attempts: Sequence[Attempt], kind: Kind) -> list[Outcome]:
        for a in attempts:
            require_kind(a, kind, self.name)
        if not attempts:
            return []
        self._ensure_ready()
        if self.latency:
            time.sleep(self.latency)
        found = self._record(attempts)
        return [found[a.idempotency_key] for a in attempts]

    def charge(self, a: Attempt) -> Outcome:
        return self._do([a], "charge")[0]

    def credit(self, a: Attempt) -> Outcome:
        return self._do([a], "credit")[0]

    def charge_many(self, attempts: Sequence[Attempt]) -> list[Outcome]:
        """Charge a batch in one statement; outcomes in the order given.

        The latency is slept once per batch: it models the batch's calls all being in
        flight at the same time (as a fully concurrent runner would have them), not
        one after another.
        """
        return self._do(attempts, "charge")

    def credit_many(self, attempts: Sequence[Attempt]) -> list[Outcome]:
        """Credit a batch in one statement (latency as in ``charge_many``)."""
        return self._do(attempts, "credit")

    def lookup(self, a: Attempt) -> Outcome | None:
        return self.lookup_many([a])[0]

    def lookup_many(self, attempts: Sequence[Attempt]) -> list[Outcome | None]:
        """Recorded outcomes by key (None: never seen), in the order given."""
        if not attempts:
            return []
        self._ensure_ready()
        rows = self._query(_LOOKUP, [[a.idempotency_key for a in attempts]])
        seen = {key: (kind, ok, err) for key, kind, ok, err in rows}
        out: list[Outcome | None] = []
        for a in attempts:
            row = seen.get(a.idempotency_key)
            out.append(None if row is None else self._outcome(a.idempotency_key, row[0], a.kind, row[1], row[2]))
        return out

    def is_merchant(self, route: str) -> bool:
        return "nomerchant" not in route

    def is_merchant_many(self, routes: Sequence[str]) -> list[bool]:
        """``is_merchant`` of each route, in the order given (one request for a batch)."""
        return [self.is_merchant(r) for r in routes]
