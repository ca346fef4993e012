"""Fixtures of the hardening tests (roles, append-only ledger, concurrency, bad input).

Every test that uses ``db`` ends with ``payday.check()`` returning no row, unless it is
marked ``corrupt`` (it damages data on purpose to see the violation detected):
tests/invariants.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg import sql
from invariants import _invariants_hold_afterwards, pytest_configure  # noqa: F401  (registered here)
from psycopg.conninfo import conninfo_to_dict, make_conninfo

# The two inserts of the web application, exactly as SPEC 2 writes them.
INSERT_PARTICIPANT = (
    "INSERT INTO payday.participants (username, claimed_time, is_suspicious, balance, "
    "balanced_account_uri, stripe_customer_id) VALUES (%s, %s, %s, %s, %s, %s)"
)
INSERT_TIP = "INSERT INTO payday.tips (ctime, mtime, tipper, tippee, amount) VALUES (%s, %s, %s, %s, %s)"


def violations(conn: psycopg.Connection) -> list[tuple[Any, ...]]:
    return conn.execute("SELECT * FROM payday.check()").fetchall()


@contextmanager
def as_role(conn: psycopg.Connection, role: str) -> Iterator[psycopg.Connection]:
    """``SET ROLE role`` for the block (the connection must be autocommit, no transaction open)."""
    conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
    try:
        yield conn
    finally:
        conn.execute("RESET ROLE")


def sqlstate_of(conn: psycopg.Connection, query: str, params: Any = None) -> str | None:
    """Runs ``query`` in a transaction that is always rolled back; returns its SQLSTATE (None: no error)."""
    try:
        with conn.transaction():
            conn.execute(query, params)
            raise psycopg.Rollback
    except psycopg.Error as e:
        return e.sqlstate
    return None


def participant(conn: psycopg.Connection, username: str, *, days: float | None = 30, suspicious: bool | None = False,
                balance: Decimal | int = 0, buri: str | None = None, scid: str | None = None) -> None:
    """A participant through the web application's insert; claimed ``days`` ago (None: a stub)."""
    conn.execute(
        INSERT_PARTICIPANT.replace("VALUES (%s, %s,", "VALUES (%s, now() - make_interval(secs => %s * 86400),")
        if days is not None else INSERT_PARTICIPANT,
        (username, days if days is not None else None, suspicious, Decimal(balance), buri, scid),
    )


def tip(conn: psycopg.Connection, tipper: str, tippee: str, amount: str | Decimal, *, days: float = 20) -> None:
    """A tip through the web application's insert, made ``days`` ago."""
    conn.execute(
        "INSERT INTO payday.tips (ctime, mtime, tipper, tippee, amount) VALUES "
        "(now() - make_interval(secs => %s * 86400), now() - make_interval(secs => %s * 86400), %s, %s, %s)",
        (days, days, tipper, tippee, Decimal(amount)),
    )


@pytest.fixture
def login_role(dsn: str) -> Iterator[Callable[..., str]]:
    """``login_role('payday_runner')``: a new LOGIN role that is a member of the given roles only;
    returns a DSN connecting as it (trust authentication on the test server). Dropped afterwards."""
    made: list[str] = []
    admin = psycopg.connect(dsn, autocommit=True)

    def make(*member_of: str) -> str:
        name = f"payday_t_login_{uuid.uuid4().hex[:10]}"
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(name)))
        made.append(name)
        for role in member_of:
            admin.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(role), sql.Identifier(name)))
        params = {k: v for k, v in conninfo_to_dict(dsn).items() if k != "password"}
        params["user"] = name
        return make_conninfo(**params)  # type: ignore[arg-type]

    try:
        yield make
    finally:
        for name in made:
            ident = sql.Identifier(name)
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            admin.execute(sql.SQL("DROP OWNED BY {}").format(ident))
            admin.execute(sql.SQL("DROP ROLE {}").format(ident))
        admin.close()


def community(conn: psycopg.Connection) -> None:
    """A small community: bob (card) tips alice and carol; dave (balance) tips alice; alice gets paid out."""
    participant(conn, "alice", days=40, buri="/v1/bank/alice")
    participant(conn, "bob", days=39, scid="cus_bob")
    participant(conn, "carol", days=38)
    participant(conn, "dave", days=37)
    conn.execute("UPDATE payday.participants SET balance = 30 WHERE username = 'dave'")  # behind the ledger:
    conn.execute("UPDATE payday.participants SET opening_balance = 30 WHERE username = 'dave'")  # an opening balance
    tip(conn, "bob", "alice", "6.00", days=30)
    tip(conn, "bob", "carol", "1.00", days=29)
    tip(conn, "dave", "alice", "12.00", days=28)


def sql_payday(conn: psycopg.Connection, *, until: str = "done", charge_ok: bool = True) -> int:
    """Drives the open (or a new) payday through the SQL functions, as a DBA would from psql,
    with every processor call 'manual' and succeeding (charges: ``charge_ok``). Stops once the
    payday reaches phase ``until`` (payin: after charges are recorded). Returns the payday id."""
    pid, phase = conn.execute("SELECT id, phase FROM payday.start()").fetchone()  # type: ignore[misc]
    if phase == "payin":
        ids = [r[0] for r in conn.execute("SELECT id FROM payday.charge_intents('manual')").fetchall()]
        if ids:
            conn.execute("SELECT payday.record_outcomes(%s::bigint[], %s::boolean[], %s::text[])",
                         (ids, [charge_ok] * len(ids), [None if charge_ok else "declined"] * len(ids)))
        if until == "payin":
            return pid
        conn.execute("SELECT * FROM payday.pay_tips()")
        phase = "clear"
    if until == "clear":
        return pid
    if phase == "clear":
        conn.execute("SELECT payday.clear_pending()")
        phase = "payout"
    if until == "payout":
        return pid
    if phase == "payout":
        for (username,) in conn.execute("SELECT username FROM payday.credits_due()").fetchall():
            xid = conn.execute("SELECT payday.credit_intent(%s, 'manual')", (username,)).fetchone()[0]  # type: ignore[index]
            conn.execute("SELECT payday.credit_outcome(%s, true)", (xid,))
        conn.execute("SELECT * FROM payday.finish()")
    return pid
