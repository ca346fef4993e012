"""Building blocks for the SQL tests: participants and tips written exactly as the web
application writes them (SPEC §2), a payday driven through the SQL functions, and
snapshots of what the database holds.

Money is Decimal everywhere. Timestamps are fixed: everything "historical" happens in
April 2013 (``BASE``), well before any payday these tests start.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import ROUND_UP, Decimal, localcontext
from typing import Any

import psycopg
from psycopg.rows import dict_row

BASE = datetime(2013, 4, 1, 12, 0, tzinfo=timezone.utc)
CENT = Decimal("0.01")

# The two inserts of the web application, exactly as SPEC §2 writes them.
INSERT_PARTICIPANT = """
    INSERT INTO payday.participants (username, claimed_time, is_suspicious, balance,
                                     balanced_account_uri, stripe_customer_id) VALUES (%s, %s, %s, %s, %s, %s)
"""
INSERT_TIP = "INSERT INTO payday.tips (ctime, mtime, tipper, tippee, amount) VALUES (%s, %s, %s, %s, %s)"

PAYDAY_TABLES = ("payday.exchanges", "payday.transfers", "payday.tips", "payday.paydays", "payday.participants")

COUNTERS = ("nparticipants", "ntippers", "ntips", "ntransfers", "transfer_volume", "ncc_failing",
            "ncc_missing", "ncharges", "charge_volume", "charge_fees_volume", "nachs", "ach_volume",
            "ach_fees_volume", "nach_failing")

# Sentinel for "claimed before the payday" with an automatic, increasing claim time.
CLAIMED = object()


def D(value: Any) -> Decimal:
    return Decimal(str(value))


def upcharge(amount: Decimal) -> tuple[Decimal, Decimal]:
    """The reference maths of SPEC §3, in Decimal: (charge_amount, fee)."""
    with localcontext(prec=80):  # numeric(35,2) needs more than the default 28 digits
        charge = ((amount + Decimal("0.30")) * Decimal("1.039")).quantize(CENT, rounding=ROUND_UP)
        return charge, charge - amount


def rows(db: psycopg.Connection, query: str, params: Any = None) -> list[dict[str, Any]]:
    with db.cursor(row_factory=dict_row) as cur:
        cur.execute(query, params)
        return cur.fetchall() if cur.description else []


def row(db: psycopg.Connection, query: str, params: Any = None) -> dict[str, Any]:
    result = rows(db, query, params)
    assert len(result) == 1, f"expected one row from {query!r}, got {result!r}"
    return result[0]


def value(db: psycopg.Connection, query: str, params: Any = None) -> Any:
    with db.cursor() as cur:
        cur.execute(query, params)
        result = cur.fetchall()
    assert len(result) == 1 and len(result[0]) == 1, f"expected one value from {query!r}, got {result!r}"
    return result[0][0]


@dataclass
class World:
    """A community built through the web application's inserts."""

    db: psycopg.Connection
    _claims: int = 0
    _tips: int = 0
    names: list[str] = field(default_factory=list)

    def participant(self, username: str, *, claimed: Any = CLAIMED, suspicious: bool | None = False,
                    balance: Any = "0.00", balanced: str | None = None, stripe: str | None = None) -> str:
        """claimed: CLAIMED (an increasing time in 2013), None (a stub), or a datetime."""
        if claimed is CLAIMED:
            self._claims += 1
            claimed = BASE + timedelta(minutes=self._claims)
        self.db.execute(INSERT_PARTICIPANT, (username, claimed, suspicious, D(balance), balanced, stripe))
        self.names.append(username)
        return username

    def tip(self, tipper: str, tippee: str, amount: Any, *, ctime: datetime | None = None,
            mtime: datetime | None = None) -> None:
        """One row of tip history; by default the ctime is a fresh, increasing 2013 time and
        the mtime equals it."""
        self._tips += 1
        ctime = ctime or BASE + timedelta(days=1, minutes=self._tips)
        mtime = mtime or ctime
        self.db.execute(INSERT_TIP, (ctime, mtime, tipper, tippee, D(amount)))

    def claim(self, username: str, when: datetime) -> None:
        """What the web application does when someone claims their account."""
        self.db.execute("UPDATE payday.participants SET claimed_time = %s WHERE username = %s", (when, username))


def start(db: psycopg.Connection) -> dict[str, Any]:
    return row(db, "SELECT * FROM payday.start()")


def open_payday(db: psycopg.Connection) -> dict[str, Any] | None:
    pd = row(db, "SELECT * FROM payday.open_payday()")
    return pd if pd["id"] is not None else None


def participant(db: psycopg.Connection, username: str) -> dict[str, Any]:
    return row(db, "SELECT * FROM payday.participants WHERE username = %s", (username,))


def balance(db: psycopg.Connection, username: str) -> Decimal:
    return value(db, "SELECT balance FROM payday.participants WHERE username = %s", (username,))


def pending(db: psycopg.Connection, username: str) -> Decimal | None:
    return value(db, "SELECT pending FROM payday.participants WHERE username = %s", (username,))


def balances(db: psycopg.Connection) -> dict[str, Decimal]:
    return {r["username"]: r["balance"] for r in rows(db, "SELECT username, balance FROM payday.participants")}


def transfers(db: psycopg.Connection, payday_id: int | None = None) -> list[tuple[str, str, Decimal]]:
    """(tipper, tippee, amount), sorted."""
    got = rows(db, "SELECT tipper, tippee, amount FROM payday.transfers"
                   " WHERE %s::bigint IS NULL OR payday_id = %s", (payday_id, payday_id))
    return sorted((r["tipper"], r["tippee"], r["amount"]) for r in got)


def exchanges(db: psycopg.Connection) -> list[tuple[str, Decimal, Decimal, str]]:
    """(participant, amount, fee, status), sorted."""
    got = rows(db, "SELECT participant, amount, fee, status FROM payday.exchanges")
    return sorted((r["participant"], r["amount"], r["fee"], r["status"]) for r in got)


def counters(db: psycopg.Connection, payday_id: int | None = None) -> dict[str, Any]:
    """The counters of a payday (the open one, else the latest)."""
    if payday_id is None:
        payday_id = value(db, "SELECT max(id) FROM payday.paydays")
    pd = row(db, "SELECT * FROM payday.paydays WHERE id = %s", (payday_id,))
    return {k: pd[k] for k in COUNTERS}


def violations(db: psycopg.Connection) -> list[tuple[Any, ...]]:
    return [tuple(r.values()) for r in rows(db, "SELECT * FROM payday.check()")]


def assert_invariants(db: psycopg.Connection) -> None:
    found = violations(db)
    assert found == [], f"payday.check() reports violations: {found}"


def corrupt(db: psycopg.Connection, *statements: str) -> None:
    """Run statements as the superuser with every trigger off (session_replication_role =
    replica), to damage data the way only a broken tool or a hand edit could."""
    with db.transaction():
        db.execute("SET LOCAL session_replication_role = replica")
        for statement in statements:
            db.execute(statement)


def reset(db: psycopg.Connection) -> None:
    """Empty every payday table (between hypothesis examples sharing one database). The
    ledger refuses DELETE and TRUNCATE by trigger, so this goes around the triggers; DELETE,
    because TRUNCATE's new files cost ~100 ms a time against ~1 ms for these few rows."""
    tables = [r[0] for r in db.execute(
        "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables WHERE schemaname = 'payday'").fetchall()]
    corrupt(db, *(f"DELETE FROM {t}" for t in tables))


def snapshot(db: psycopg.Connection) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every payday table, to compare before/after."""
    out = {}
    for table in PAYDAY_TABLES:
        with db.cursor() as cur:
            cur.execute(f"SELECT * FROM {table} t ORDER BY t::text")
            out[table] = cur.fetchall()
    return out


def sandbox_fails(route: str | None) -> bool:
    return route is not None and "fail" in route


def is_merchant(route: str | None) -> bool:
    return route is not None and "nomerchant" not in route


CHARGE_ERROR = "card declined by the sandbox"
CREDIT_ERROR = "bank account refused by the sandbox"


@dataclass
class Driver:
    """Drives one payday through the SQL functions, the way the runner or a DBA would,
    with the sandbox's rules for outcomes (SPEC §7): a route containing ``fail`` fails,
    a balanced_account_uri containing ``nomerchant`` is not a merchant (no payout)."""

    db: psycopg.Connection
    batch: bool = True          # charge_intents + record_outcomes, or one call per participant
    fails: Callable[[str | None], bool] = sandbox_fails
    merchant: Callable[[str | None], bool] = is_merchant

    def start(self) -> dict[str, Any]:
        return start(self.db)

    def charges(self) -> list[int]:
        if self.batch:
            made = rows(self.db, "SELECT id, route FROM payday.charge_intents()")
            self.record([(x["id"], x["route"]) for x in made], CHARGE_ERROR)
            return [x["id"] for x in made]
        ids = []
        for due in rows(self.db, "SELECT * FROM payday.charges_due()"):
            xid = value(self.db, "SELECT payday.charge_intent(%s)", (due["username"],))
            failed = self.fails(due["route"])
            self.db.execute("SELECT payday.charge_outcome(%s, %s, %s, %s)",
                            (xid, not failed, CHARGE_ERROR if failed else None, f"ch_{xid}"))
            ids.append(xid)
        return ids

    def record(self, made: Iterable[tuple[int, str | None]], error: str) -> int:
        made = list(made)
        ids = [xid for xid, _ in made]
        ok = [not self.fails(route) for _, route in made]
        errors = [None if good else error for good in ok]
        refs = [f"ref_{xid}" for xid in ids]
        return value(self.db, "SELECT payday.record_outcomes(%s::bigint[], %s::boolean[], %s::text[], %s::text[])",
                     (ids, ok, errors, refs))

    def pay_tips(self) -> dict[str, Any]:
        return row(self.db, "SELECT * FROM payday.pay_tips()")

    def clear(self) -> int:
        return value(self.db, "SELECT payday.clear_pending()")

    def credits(self) -> list[int]:
        made = []
        for due in rows(self.db, "SELECT * FROM payday.credits_due()"):
            if not self.merchant(due["route"]):
                continue
            xid = value(self.db, "SELECT payday.credit_intent(%s)", (due["username"],))
            made.append((xid, due["route"]))
            if not self.batch:
                failed = self.fails(due["route"])
                self.db.execute("SELECT payday.credit_outcome(%s, %s, %s, %s)",
                                (xid, not failed, CREDIT_ERROR if failed else None, f"cr_{xid}"))
        if self.batch:
            self.record(made, CREDIT_ERROR)
        return [xid for xid, _ in made]

    def finish(self) -> dict[str, Any]:
        return row(self.db, "SELECT * FROM payday.finish()")

    def run(self, between: Callable[[], None] | None = None) -> dict[str, Any]:
        """A whole payday; ``between`` runs right after start (changes made after ts_start)."""
        self.start()
        if between is not None:
            between()
        self.charges()
        self.pay_tips()
        self.clear()
        self.credits()
        return self.finish()
