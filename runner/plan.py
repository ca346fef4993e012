"""`payday plan`: what a payday now would charge, transfer and pay out; changes nothing.

The SQL functions do the work, inside ONE transaction that is rolled back at the end:
start(), charge_intents('manual'), every charge recorded as succeeded, pay_tips(),
clear_pending(), credits_due(). So the plan follows the same rules as a real payday,
assuming every charge succeeds and every bank account is a merchant.
"""
from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, Iterator, TextIO

import psycopg
from psycopg.rows import dict_row

from payday.run import LOCK_KEY, LockHeld, RunError, connect, sql_error


def _j(v: Any) -> Any:
    return str(v) if isinstance(v, Decimal) else v


def _stream(conn: psycopg.Connection, name: str, query: str, params: tuple[Any, ...] = ()) -> Iterator[dict[str, Any]]:
    with conn.cursor(name=name, row_factory=dict_row) as cur:
        cur.itersize = 1000
        cur.execute(query, params)
        yield from cur


class _JsonList:
    """Writes a JSON array item by item (details can be large)."""

    def __init__(self, out: TextIO | None, key: str, first: bool = False):
        self.out, self.n = out, 0
        if out:
            out.write(("" if first else ",\n") + f'  "{key}": [')

    def add(self, row: dict[str, Any]) -> None:
        if self.out:
            self.out.write(("\n    " if self.n == 0 else ",\n    ") + json.dumps({k: _j(v) for k, v in row.items()}))
        self.n += 1

    def close(self) -> None:
        if self.out:
            self.out.write("\n  ]" if self.n else "]")


def plan(dsn: str, out: TextIO, *, as_json: bool = False) -> dict[str, Any]:
    """Print the plan (text, or JSON with details) and return its summary."""
    conn = connect(dsn, autocommit=False)
    try:
        seq, before = _sequence_state(conn)
        summary = _plan(conn, out if as_json else None, out)
        conn.rollback()  # the whole point: nothing is kept
        if summary["payday_state"] == "new":
            _give_back_payday_id(conn, seq, before, summary["payday"])
        return summary
    except psycopg.Error as e:
        raise sql_error(e) from e
    finally:
        try:
            conn.rollback()
        finally:
            conn.close()


def _sequence_state(conn: psycopg.Connection) -> tuple[str | None, tuple[int, bool]]:
    """The paydays id sequence and its state (None when this role may not read it)."""
    try:
        with conn.transaction():
            (seq,) = conn.execute("SELECT pg_get_serial_sequence('payday.paydays', 'id')").fetchone()  # type: ignore[misc]
            row = conn.execute(f"SELECT last_value, is_called FROM {seq}").fetchone()
    except psycopg.Error:
        return None, (0, False)
    assert row is not None
    return seq, (int(row[0]), bool(row[1]))


def _give_back_payday_id(conn: psycopg.Connection, seq: str | None, before: tuple[int, bool], used: int) -> None:
    """Sequences ignore rollbacks: rewind the paydays id the simulation took, so the next
    real payday does not skip a number -- only if nobody took another id meanwhile, and
    only when this role may (else the next payday just skips a number)."""
    if seq is None:
        return
    try:
        with conn.transaction():
            locked = conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (LOCK_KEY,)).fetchone()
            row = conn.execute(f"SELECT last_value FROM {seq}").fetchone()
            if locked and locked[0] and row and int(row[0]) == used:
                conn.execute("SELECT setval(%s, %s, %s)", (seq, before[0], before[1]))
    except psycopg.Error:
        pass


def _plan(conn: psycopg.Connection, jout: TextIO | None, out: TextIO) -> dict[str, Any]:
    row = conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (LOCK_KEY,)).fetchone()
    if not (row and row[0]):
        raise LockHeld("a payday run is in progress (it holds the runner lock); see `payday status`")
    with conn.cursor(row_factory=dict_row) as cur:
        had_open = cur.execute("SELECT count(*) AS n FROM payday.paydays WHERE phase <> 'done'").fetchone()
        pd = cur.execute("SELECT * FROM payday.start()").fetchone()
    assert pd is not None
    pid, phase0 = pd["id"], pd["phase"]
    summary: dict[str, Any] = {
        "payday": pid,
        "payday_state": "open" if had_open and had_open["n"] else "new",
        "phase": phase0,
    }
    if jout:
        jout.write("{\n" + ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in summary.items()))

    # Charges: everyone charges_due() lists, plus intents an interrupted run left `pre`.
    charges = _JsonList(jout, "charges")
    if phase0 == "payin":
        conn.execute(
            "CREATE TEMP TABLE payday_plan_charges ON COMMIT DROP AS "
            "SELECT username, amount, charge_amount, fee, processor FROM payday.charges_due() "
            "UNION ALL SELECT participant, amount, amount + fee, fee, processor "
            "FROM payday.pending_exchanges() WHERE kind = 'charge'"
        )
        for r in _stream(conn, "plan_charges", "SELECT * FROM payday_plan_charges ORDER BY username"):
            charges.add(r)
        conn.execute("SELECT count(*) FROM payday.charge_intents('manual')")
        conn.execute(
            "SELECT payday.record_outcomes(coalesce(array_agg(id), '{}'), coalesce(array_agg(true), '{}'), "
            "coalesce(array_agg(NULL::text), '{}'), coalesce(array_agg(NULL::text), '{}')) "
            "FROM payday.pending_exchanges() WHERE kind = 'charge'"
        )
        with conn.cursor(row_factory=dict_row) as cur:
            ch = cur.execute(
                "SELECT count(*) AS n, coalesce(sum(amount), 0) AS amount, "
                "coalesce(sum(charge_amount), 0) AS charge_amount, coalesce(sum(fee), 0) AS fee "
                "FROM payday_plan_charges"
            ).fetchone()
            tips = cur.execute("SELECT * FROM payday.pay_tips()").fetchone()
        summary["charges"] = dict(ch or {})
        summary["tips"] = dict(tips or {})
    charges.close()

    transfers = _JsonList(jout, "transfers")
    tr_query = (
        "SELECT tipper, tippee, amount, context FROM payday.transfers WHERE payday_id = %s ORDER BY id"
    )
    for r in _stream(conn, "plan_transfers", tr_query, (pid,)):
        transfers.add(r)
    transfers.close()
    with conn.cursor(row_factory=dict_row) as cur:
        summary["transfers"] = cur.execute(
            "SELECT count(*) AS n, count(DISTINCT tipper) AS tippers, coalesce(sum(amount), 0) AS volume "
            "FROM payday.transfers WHERE payday_id = %s",
            (pid,),
        ).fetchone()
        phase = cur.execute("SELECT phase FROM payday.paydays WHERE id = %s", (pid,)).fetchone()["phase"]  # type: ignore[index]
    if phase == "clear":
        conn.execute("SELECT payday.clear_pending()")

    payouts = _JsonList(jout, "payouts")
    conn.execute(
        "CREATE TEMP TABLE payday_plan_payouts ON COMMIT DROP AS "
        "SELECT username, balance, obligations, payout, credit_amount, fee FROM payday.credits_due()"
    )
    for r in _stream(conn, "plan_payouts", "SELECT * FROM payday_plan_payouts ORDER BY username"):
        payouts.add(r)
    payouts.close()
    with conn.cursor(row_factory=dict_row) as cur:
        summary["payouts"] = cur.execute(
            "SELECT count(*) AS n, coalesce(sum(payout), 0) AS payout, "
            "coalesce(sum(credit_amount), 0) AS credit_amount, coalesce(sum(fee), 0) AS fee FROM payday_plan_payouts"
        ).fetchone()
        summary["counters"] = cur.execute(
            "SELECT nparticipants, ntippers, ntips, ntransfers, transfer_volume, ncc_missing "
            "FROM payday.paydays WHERE id = %s",
            (pid,),
        ).fetchone()
    if jout:
        rest = {
            k: {a: _j(b) for a, b in (summary[k] or {}).items()}
            for k in ("charges", "tips", "transfers", "payouts", "counters")
            if k in summary
        }
        jout.write(',\n  "summary": ' + json.dumps(rest) + "\n}\n")
    else:
        _text(summary, out)
    return summary


def _text(s: dict[str, Any], out: TextIO) -> None:
    which = f"the open payday {s['payday']}" if s["payday_state"] == "open" else "a new payday"
    out.write(f"plan for {which} (phase {s['phase']}); nothing was changed\n")
    ch = s.get("charges")
    if ch is not None:
        out.write(
            f"  charges:   {ch['n']} card charge(s), {ch['charge_amount']} charged, "
            f"{ch['amount']} to balances, {ch['fee']} fees (assuming all succeed)\n"
        )
    else:
        out.write("  charges:   none (the payday is past its payin phase)\n")
    tr = s["transfers"]
    out.write(f"  transfers: {tr['n']} tip(s) from {tr['tippers']} tipper(s), {tr['volume']} moved\n")
    c = s.get("counters") or {}
    if c.get("ncc_missing"):
        out.write(f"             {c['ncc_missing']} tipper(s) short with no funding source (ncc_missing)\n")
    po = s["payouts"]
    out.write(
        f"  payouts:   {po['n']} payout(s), {po['payout']} from balances, {po['credit_amount']} to bank "
        f"accounts, {po['fee']} fees (assuming every bank account is a merchant)\n"
    )


__all__ = ["plan", "RunError"]
