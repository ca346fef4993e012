"""pgTAP-style assertions bound to a psycopg connection.

    tap.ok("SELECT count(*) = 2 FROM payday.participants", "two participants")
    tap.is_("SELECT balance FROM payday.participants WHERE username = %s", Decimal("1.00"), params=["alice"])
    tap.throws_ok("SELECT payday.transfer('a', 'a', 1)", "23514", "self")
    tap.results_eq("SELECT username FROM payday.participants ORDER BY 1", [("alice",), ("bob",)])

Each helper raises AssertionError with a clear message. Statements run on the bound
connection as they are (autocommit in the ``db`` fixture), except ``throws_ok``, which
runs its statement in a transaction (a savepoint inside an open one) that it rolls back.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql as pgsql

Params = Sequence[Any] | dict[str, Any] | None
Rows = list[tuple[Any, ...]]


def _no_float(value: Any) -> None:
    if isinstance(value, float):
        raise TypeError("money is Decimal, never float: compare with Decimal('...')")


class Tap:
    """Assertions over one connection; schemas whose contents throws_ok checks are unchanged."""

    def __init__(self, conn: psycopg.Connection, schemas: Sequence[str] = ("payday",)) -> None:
        self.conn = conn
        self.schemas = list(schemas)

    def rows(self, query: str, params: Params = None) -> Rows:
        with self.conn.cursor() as cur:
            cur.execute(query, params)
            return [tuple(r) for r in cur.fetchall()] if cur.description else []

    def value(self, query: str, params: Params = None) -> Any:
        """The single value of a one-row, one-column query."""
        rows = self.rows(query, params)
        if len(rows) != 1 or len(rows[0]) != 1:
            raise AssertionError(f"expected one row of one column from {query!r}, got {rows!r}")
        return rows[0][0]

    def ok(self, test: str | bool, msg: str = "", params: Params = None) -> None:
        got = self.value(test, params) if isinstance(test, str) else test
        if got is not True:
            raise AssertionError(f"not ok: {msg or test!r}: got {got!r}")

    def is_(self, query: str, expected: Any, msg: str = "", params: Params = None) -> None:
        _no_float(expected)
        got = self.value(query, params)
        if got != expected or (got is None) != (expected is None):
            raise AssertionError(f"not ok: {msg or query!r}:\n     got: {got!r}\nexpected: {expected!r}")

    def isnt(self, query: str, unexpected: Any, msg: str = "", params: Params = None) -> None:
        _no_float(unexpected)
        got = self.value(query, params)
        if got == unexpected and (got is None) == (unexpected is None):
            raise AssertionError(f"not ok: {msg or query!r}: got {got!r}, which it should not be")

    def lives_ok(self, query: str, msg: str = "", params: Params = None) -> Rows:
        """Runs the statement (its effects stay); fails if it raises. Returns its rows, if any."""
        try:
            return self.rows(query, params)
        except psycopg.Error as exc:
            raise AssertionError(
                f"not ok: {msg or query!r} died: {exc.sqlstate}: {exc.diag.message_primary or exc}"
            ) from exc

    def throws_ok(self, query: str, sqlstate: str, msg_pattern: str | None = None, msg: str = "",
                  params: Params = None) -> psycopg.Error:
        """The statement must raise ``sqlstate`` (and a message matching ``msg_pattern``, a regex)
        and leave every table of the checked schemas as it was. Returns the error."""
        label = msg or query
        before = self.fingerprint()
        error: psycopg.Error | None = None
        try:
            with self.conn.transaction():
                self.rows(query, params)
                raise psycopg.Rollback  # it did not throw: undo it all the same
        except psycopg.Error as exc:
            error = exc
        if error is None:
            raise AssertionError(f"not ok: {label!r}: expected SQLSTATE {sqlstate}, but it did not throw")
        text = error.diag.message_primary or str(error)
        if error.sqlstate != sqlstate:
            raise AssertionError(f"not ok: {label!r}: expected SQLSTATE {sqlstate}, got {error.sqlstate}: {text}")
        if msg_pattern is not None and not re.search(msg_pattern, text):
            raise AssertionError(f"not ok: {label!r}: message {text!r} does not match {msg_pattern!r}")
        after = self.fingerprint()
        changed = sorted(t for t in set(before) | set(after) if before.get(t) != after.get(t))
        if changed:
            raise AssertionError(f"not ok: {label!r} threw {sqlstate} but changed {', '.join(changed)}")
        return error

    def results_eq(self, query: str, expected: str | Sequence[Sequence[Any]], msg: str = "",
                   params: Params = None) -> None:
        """Same rows in the same order; ``expected`` is rows or another query."""
        got = self.rows(query, params)
        want = self.rows(expected) if isinstance(expected, str) else [tuple(r) for r in expected]
        for row in want:
            for v in row:
                _no_float(v)
        if got != want:
            diff = next((i for i, (g, w) in enumerate(zip(got, want)) if g != w), min(len(got), len(want)))
            raise AssertionError(
                f"not ok: {msg or query!r}: results differ at row {diff + 1} "
                f"(got {len(got)} rows, expected {len(want)}):\n     got: "
                f"{got[diff] if diff < len(got) else 'no row'!r}\nexpected: "
                f"{want[diff] if diff < len(want) else 'no row'!r}"
            )

    def fingerprint(self) -> dict[str, str]:
        """table -> md5 of its sorted rows, for every table of the checked schemas."""
        tables = self.rows(
            "SELECT quote_ident(table_schema) || '.' || quote_ident(table_name) FROM information_schema.tables"
            " WHERE table_schema = ANY(%s) AND table_type = 'BASE TABLE' ORDER BY 1",
            [self.schemas],
        )
        if not tables:
            return {}
        parts = [
            pgsql.SQL("SELECT {name}, md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) FROM {tbl} t")
            .format(name=pgsql.Literal(name), tbl=pgsql.SQL(name))
            for (name,) in tables
        ]
        with self.conn.cursor() as cur:
            cur.execute(pgsql.SQL(" UNION ALL ").join(parts))
            return {name: digest for name, digest in cur.fetchall()}
