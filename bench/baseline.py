"""BASELINE: the 2013 row-by-row payday, for comparison only. It is not the package.

This module re-expresses, in modern Python and psycopg 3, the *algorithm* of Gittip's
April 2013 payday script (shared/reference/gittip-payday-2013.py.txt) so the benchmark
can time it on the same data as the set-based package. Its shape is the point:

* one query per participant to fetch that participant's tips (for payin, and again
  for payout);
* one transaction per tip transfer (debit the tipper, credit the tippee's pending,
  record the transfer, bump the payday counters, commit);
* one transaction per card charge and per payout, and a separate counters update per
  participant.

Its *rules* follow SPEC.md, so the two runs can be compared row for row: tips are paid
oldest relationship first (ctime, tippee); a failed payout leaves the balance alone;
failed charges and payouts are recorded as `failed` exchanges. The "processor" is an
in-process stand-in with the sandbox's answers (a route containing `fail` is declined,
a Balanced account containing `nomerchant` is not a merchant) and no latency and no
database write, which, if anything, flatters the baseline.

It writes the tables directly, as the original did, so it runs on its own copy of the
data (CREATE DATABASE ... TEMPLATE): the hardening trigger that reserves
payday.paydays to the package's functions is disabled in that copy only.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from decimal import ROUND_UP, Decimal
from typing import Any

import psycopg
from psycopg.rows import dict_row

CHARGE_FIXED = Decimal("0.30")
CHARGE_RATE = Decimal("1.039")
MINIMUM_CHARGE = Decimal("9.32")
CREDIT_FEE = Decimal("0.30")
MINIMUM_CREDIT = Decimal("10.00")
CENT = Decimal("0.01")
OPEN = "1970-01-01T00:00:00+00"


class BaselineTimeout(Exception):
    def __init__(self, elapsed: float, done: int, total: int):
        super().__init__(f"baseline stopped after {elapsed:.0f}s, {done}/{total} participant visits")
        self.elapsed, self.done, self.total = elapsed, done, total


@dataclass
class BaselineResult:
    seconds: float
    finished: bool
    visits: int
    total_visits: int
    transfers: int = 0
    charges: int = 0
    credits: int = 0
    queries: int = 0
    commits: int = 0
    phases: dict[str, float] = field(default_factory=dict)

    @property
    def estimated_seconds(self) -> float:
        """The measured time, or (stopped by the timeout) extrapolated linearly from the
        share of participant visits done."""
        if self.finished or not self.visits:
            return self.seconds
        return self.seconds * self.total_visits / self.visits


def fee_for_charge(amount: Decimal) -> tuple[Decimal, Decimal]:
    """What the card pays for a nominal amount, and the fee (rounded up to the cent)."""
    charged = ((amount + CHARGE_FIXED) * CHARGE_RATE).quantize(CENT, rounding=ROUND_UP)
    return charged, charged - amount


def stand_in_processor_declines(route: str) -> str | None:
    """The sandbox's answer, computed in process: an error text, or None for success."""
    return 'declined (baseline stand-in: route contains "fail")' if "fail" in route else None


class RowByRowPayday:
    """The baseline. `run()` does a whole payday the 2013 way on database `dsn`."""

    def __init__(self, dsn: str, *, timeout: float | None = None):
        self.dsn = dsn
        self.timeout = timeout
        self.conn: psycopg.Connection[Any] | None = None
        self.t0 = 0.0
        self.visits = 0
        self.total_visits = 0
        self.result: BaselineResult | None = None
        self.n_queries = 0
        self.n_commits = 0
        self.n_transfers = 0
        self.n_charges = 0
        self.n_credits = 0

    # -- plumbing -------------------------------------------------------------------------

    def q(self, sql: str, params: Any = None) -> psycopg.Cursor[Any]:
        assert self.conn is not None
        self.n_queries += 1
        return self.conn.execute(sql, params)  # type: ignore[arg-type]

    def commit(self) -> None:
        assert self.conn is not None
        self.conn.commit()
        self.n_commits += 1

    def tick(self) -> None:
        self.visits += 1
        if self.timeout is not None and time.perf_counter() - self.t0 > self.timeout:
            raise BaselineTimeout(time.perf_counter() - self.t0, self.visits, self.total_visits)

    @staticmethod
    def prepare_copy(dsn: str) -> None:
        """In the baseline's own copy only: let it write payday.paydays directly, as 2013 did."""
        with psycopg.connect(dsn, autocommit=True) as conn:
            for (name,) in conn.execute(
                "SELECT tgname FROM pg_trigger WHERE tgrelid = 'payday.paydays'::regclass "
                "AND tgname = 'paydays_written_by_functions'"
            ).fetchall():
                conn.execute(f"ALTER TABLE payday.paydays DISABLE TRIGGER {name}")

    # -- the payday -------------------------------------------------------------------------

    def run(self) -> BaselineResult:
        self.conn = psycopg.connect(self.dsn, row_factory=dict_row, application_name="payday-bench-baseline")
        self.t0 = time.perf_counter()
        phases: dict[str, float] = {}
        finished = False
        try:
            t = time.perf_counter()
            payday_id, ts_start = self.open_payday()
            self.zero_pending(ts_start)
            participants = self.participants(ts_start)
            self.total_visits = 2 * len(participants)
            phases["start"] = time.perf_counter() - t
            t = time.perf_counter()
            for p in participants:
                self.tick()
                self.payin(payday_id, ts_start, p)
            phases["payin"] = time.perf_counter() - t
            t = time.perf_counter()
            self.clear_pending()
            phases["clear"] = time.perf_counter() - t
            t = time.perf_counter()
            for p in self.participants(ts_start):  # re-fetched: balances have changed
                self.tick()
                self.payout(payday_id, p)
            phases["payout"] = time.perf_counter() - t
            t = time.perf_counter()
            self.close_payday()
            phases["finish"] = time.perf_counter() - t
            finished = True
        except BaselineTimeout:
            assert self.conn is not None
            self.conn.rollback()
        finally:
            elapsed = time.perf_counter() - self.t0
            if self.conn is not None:
                self.conn.close()
        self.result = BaselineResult(
            seconds=elapsed, finished=finished, visits=self.visits, total_visits=self.total_visits,
            transfers=self.n_transfers, charges=self.n_charges, credits=self.n_credits,
            queries=self.n_queries, commits=self.n_commits, phases=phases,
        )
        return self.result

    def open_payday(self) -> tuple[int, Any]:
        row = self.q(f"SELECT id, ts_start FROM payday.paydays WHERE ts_end = '{OPEN}'").fetchone()
        if row is None:
            row = self.q("INSERT INTO payday.paydays DEFAULT VALUES RETURNING id, ts_start").fetchone()
        self.commit()
        assert row is not None
        return row["id"], row["ts_start"]

    def zero_pending(self, ts_start: Any) -> None:
        self.q("UPDATE payday.participants SET pending = 0 WHERE pending IS NULL AND claimed_time < %s", (ts_start,))
        self.commit()

    def participants(self, ts_start: Any) -> list[dict[str, Any]]:
        rows = self.q(
            "SELECT username, balance, balanced_account_uri, stripe_customer_id, is_suspicious "
            "FROM payday.participants WHERE claimed_time < %s AND is_suspicious IS NOT TRUE "
            "ORDER BY claimed_time, username", (ts_start,)).fetchall()
        self.commit()
        return rows

    def tips_for_payin(self, payday_id: int, ts_start: Any, tipper: str) -> list[dict[str, Any]]:
        """One query for one participant: their latest tip per tippee before the payday
        started, to tippees not suspicious, not yet paid in this payday, oldest first."""
        return self.q(
            """
            SELECT t.tippee, t.amount, t.ctime, e.claimed_time
              FROM (SELECT DISTINCT ON (x.tippee) x.tippee, x.amount, x.ctime
                      FROM payday.tips x
                     WHERE x.tipper = %(tipper)s AND x.mtime < %(ts)s
                     ORDER BY x.tippee, x.mtime DESC, x.id DESC) t
              JOIN payday.participants e ON e.username = t.tippee
             WHERE e.is_suspicious IS NOT TRUE
               AND NOT EXISTS (SELECT 1 FROM payday.transfers y
                                WHERE y.payday_id = %(pd)s AND y.context = 'tip'
                                  AND y.tipper = %(tipper)s AND y.tippee = t.tippee)
             ORDER BY t.ctime, t.tippee
            """, {"tipper": tipper, "ts": ts_start, "pd": payday_id}).fetchall()

    def obligations(self, tipper: str) -> Decimal:
        """One query for one participant: what their current tips add up to (payout)."""
        row = self.q(
            """
            SELECT coalesce(sum(t.amount), 0) AS total
              FROM (SELECT DISTINCT ON (x.tippee) x.tippee, x.amount
                      FROM payday.tips x WHERE x.tipper = %s
                     ORDER BY x.tippee, x.mtime DESC, x.id DESC) t
              JOIN payday.participants e ON e.username = t.tippee
             WHERE e.is_suspicious IS NOT TRUE
            """, (tipper,)).fetchone()
        return row["total"] if row else Decimal(0)

    def payin(self, payday_id: int, ts_start: Any, p: dict[str, Any]) -> None:
        tips = self.tips_for_payin(payday_id, ts_start, p["username"])
        owed = sum((t["amount"] for t in tips if t["claimed_time"] is not None and t["claimed_time"] < ts_start),
                   Decimal(0))
        self.commit()
        short = owed - p["balance"]
        if short > 0:
            self.charge(payday_id, p, short)
        paid = 0
        for tip in tips:
            if tip["amount"] == 0:
                continue
            if tip["claimed_time"] is None or tip["claimed_time"] >= ts_start:
                continue
            if not self.transfer(payday_id, p["username"], tip["tippee"], tip["amount"]):
                break
            paid += 1
        self.q(f"UPDATE payday.paydays SET nparticipants = nparticipants + 1, ntippers = ntippers + %s, "
               f"ntips = ntips + %s WHERE ts_end = '{OPEN}'", (1 if paid else 0, paid))
        self.commit()

    def charge(self, payday_id: int, p: dict[str, Any], short: Decimal) -> None:
        route = p["balanced_account_uri"] or p["stripe_customer_id"]
        if route is None:
            self.q(f"UPDATE payday.paydays SET ncc_missing = ncc_missing + 1 WHERE ts_end = '{OPEN}'")
            self.commit()
            return
        if p["is_suspicious"] is None:  # not reviewed: never charged
            return
        amount = max(short, MINIMUM_CHARGE)
        charged, fee = fee_for_charge(amount)
        error = stand_in_processor_declines(route)
        self.n_charges += 1
        self.q("INSERT INTO payday.exchanges (participant, amount, fee, processor, route, status, error, "
               "payday_id, recorded_at) VALUES (%s, %s, %s, 'sandbox', %s, %s, %s, %s, now())",
               (p["username"], amount, fee, route, "failed" if error else "succeeded", error, payday_id))
        if error:
            self.q(f"UPDATE payday.paydays SET ncc_failing = ncc_failing + 1 WHERE ts_end = '{OPEN}'")
            self.q("UPDATE payday.participants SET last_bill_result = %s WHERE username = %s",
                   (error, p["username"]))
        else:
            self.q(f"UPDATE payday.paydays SET ncharges = ncharges + 1, charge_volume = charge_volume + %s, "
                   f"charge_fees_volume = charge_fees_volume + %s WHERE ts_end = '{OPEN}'", (charged, fee))
            self.q("UPDATE payday.participants SET last_bill_result = '', balance = balance + %s "
                   "WHERE username = %s", (amount, p["username"]))
        self.commit()

    def transfer(self, payday_id: int, tipper: str, tippee: str, amount: Decimal) -> bool:
        """One transaction per tip; False when the tipper's balance cannot cover it."""
        assert self.conn is not None
        try:
            self.q("UPDATE payday.participants SET balance = balance - %s "
                   "WHERE username = %s AND pending IS NOT NULL RETURNING balance", (amount, tipper))
        except psycopg.errors.CheckViolation:
            self.conn.rollback()
            return False
        self.q("UPDATE payday.participants SET pending = pending + %s "
               "WHERE username = %s AND pending IS NOT NULL RETURNING pending", (amount, tippee))
        self.q("INSERT INTO payday.transfers (tipper, tippee, amount, payday_id, context) "
               "VALUES (%s, %s, %s, %s, 'tip')", (tipper, tippee, amount, payday_id))
        self.q(f"UPDATE payday.paydays SET ntransfers = ntransfers + 1, transfer_volume = transfer_volume + %s "
               f"WHERE ts_end = '{OPEN}'", (amount,))
        self.commit()
        self.n_transfers += 1
        return True

    def clear_pending(self) -> None:
        self.q("UPDATE payday.participants SET balance = balance + pending, pending = NULL WHERE pending IS NOT NULL")
        self.commit()

    def payout(self, payday_id: int, p: dict[str, Any]) -> None:
        obligations = self.obligations(p["username"])
        self.commit()
        payout = p["balance"] - obligations
        if payout <= 0 or payout < MINIMUM_CREDIT:
            return
        if p["is_suspicious"] is None:
            return
        uri = p["balanced_account_uri"]
        if uri is None or "nomerchant" in uri:
            return
        credit = payout - CREDIT_FEE
        error = stand_in_processor_declines(uri)
        self.n_credits += 1
        self.q("INSERT INTO payday.exchanges (participant, amount, fee, processor, route, status, error, "
               "payday_id, recorded_at) VALUES (%s, %s, %s, 'sandbox', %s, %s, %s, %s, now())",
               (p["username"], -credit, CREDIT_FEE, uri, "failed" if error else "succeeded", error, payday_id))
        if error:
            self.q(f"UPDATE payday.paydays SET nach_failing = nach_failing + 1 WHERE ts_end = '{OPEN}'")
            self.q("UPDATE payday.participants SET last_ach_result = %s WHERE username = %s", (error, p["username"]))
        else:
            self.q(f"UPDATE payday.paydays SET nachs = nachs + 1, ach_volume = ach_volume + %s, "
                   f"ach_fees_volume = ach_fees_volume + %s WHERE ts_end = '{OPEN}'", (-credit, CREDIT_FEE))
            self.q("UPDATE payday.participants SET last_ach_result = '', balance = balance - %s WHERE username = %s",
                   (payout, p["username"]))
        self.commit()

    def close_payday(self) -> None:
        self.q(f"UPDATE payday.paydays SET ts_end = greatest(now(), ts_start), phase = 'done' "
               f"WHERE ts_end = '{OPEN}'")
        self.commit()


def run_baseline(dsn: str, *, timeout: float | None = None) -> BaselineResult:
    RowByRowPayday.prepare_copy(dsn)
    return RowByRowPayday(dsn, timeout=timeout).run()
