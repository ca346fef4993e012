"""`payday status` and `payday report`: read-only views of the paydays table."""
from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any, TextIO

from psycopg.rows import dict_row

from payday.run import RunError, connect

# SPEC section 2 counters, in display order, with short column titles.
COUNTERS: list[tuple[str, str]] = [
    ("nparticipants", "participants"),
    ("ntippers", "tippers"),
    ("ntips", "tips"),
    ("ntransfers", "transfers"),
    ("transfer_volume", "transfer vol"),
    ("ncharges", "charges"),
    ("charge_volume", "charge vol"),
    ("charge_fees_volume", "charge fees"),
    ("ncc_failing", "cc failing"),
    ("ncc_missing", "cc missing"),
    ("nachs", "achs"),
    ("ach_volume", "ach vol"),
    ("ach_fees_volume", "ach fees"),
    ("nach_failing", "ach failing"),
]
SENTINEL_YEAR = 1970


def _jsonable(v: Any) -> Any:
    if isinstance(v, Decimal):
        return str(v)
    if isinstance(v, datetime):
        return v.isoformat()
    return v


def _ts(v: datetime | None) -> str:
    if v is None or v.year == SENTINEL_YEAR:
        return "-"
    return v.strftime("%Y-%m-%d %H:%M:%S%z")


def fetch_paydays(dsn: str, payday_id: int | None = None) -> list[dict[str, Any]]:
    with connect(dsn) as conn, conn.cursor(row_factory=dict_row) as cur:
        if payday_id is None:
            cur.execute("SELECT * FROM payday.paydays ORDER BY id")
        else:
            cur.execute("SELECT * FROM payday.paydays WHERE id = %s", (payday_id,))
        rows = cur.fetchall()
    for r in rows:
        if r["ts_end"] is not None and r["ts_end"].year == SENTINEL_YEAR:
            r["ts_end"] = None  # the open payday
    return rows


def report(dsn: str, out: TextIO, *, as_json: bool = False, payday_id: int | None = None) -> int:
    rows = fetch_paydays(dsn, payday_id)
    if payday_id is not None and not rows:
        raise RunError(f"no payday {payday_id}")
    if as_json:
        json.dump([{k: _jsonable(v) for k, v in r.items()} for r in rows], out, indent=2)
        out.write("\n")
        return 0
    if not rows:
        out.write("no payday yet\n")
        return 0
    if payday_id is not None:  # one payday: a vertical table
        r = rows[0]
        pairs = [("payday", str(r["id"])), ("phase", r["phase"]), ("started", _ts(r["ts_start"])),
                 ("ended", _ts(r["ts_end"]))]
        pairs += [(k, str(r[k])) for k, _ in COUNTERS]
        w = max(len(k) for k, _ in pairs)
        for k, v in pairs:
            out.write(f"{k:<{w}}  {v}\n")
        return 0
    head = ["payday", "started", "phase"] + [t for _, t in COUNTERS]
    body = [[str(r["id"]), _ts(r["ts_start"])[:16], r["phase"]] + [str(r[k]) for k, _ in COUNTERS] for r in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
    out.write("  ".join(h.rjust(w) for h, w in zip(head, widths)).rstrip() + "\n")
    out.write("  ".join("-" * w for w in widths) + "\n")
    for b in body:
        out.write("  ".join(c.rjust(w) for c, w in zip(b, widths)).rstrip() + "\n")
    return 0


def status(dsn: str, out: TextIO, *, as_json: bool = False) -> int:
    with connect(dsn) as conn, conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SELECT * FROM payday.paydays WHERE phase <> 'done' ORDER BY id DESC LIMIT 1")
        open_pd = cur.fetchone()
        pre: list[dict[str, Any]] = []
        if open_pd:
            cur.execute(
                "SELECT kind, processor, count(*) AS n FROM payday.exchanges "
                "WHERE payday_id = %s AND status = 'pre' GROUP BY kind, processor ORDER BY kind, processor",
                (open_pd["id"],),
            )
            pre = cur.fetchall()
        cur.execute("SELECT * FROM payday.paydays WHERE phase = 'done' ORDER BY id DESC LIMIT 1")
        last = cur.fetchone()
    if as_json:
        doc = {
            "open": {k: _jsonable(v) for k, v in open_pd.items() if k != "ts_end"} if open_pd else None,
            "pending_intents": [dict(r) for r in pre],
            "last_finished": {k: _jsonable(v) for k, v in last.items()} if last else None,
        }
        json.dump(doc, out, indent=2)
        out.write("\n")
        return 0
    if open_pd:
        out.write(f"open payday {open_pd['id']}: started {_ts(open_pd['ts_start'])}, phase {open_pd['phase']}\n")
        npre = sum(r["n"] for r in pre)
        detail = ", ".join(f"{r['n']} {r['kind']} ({r['processor']})" for r in pre)
        out.write(f"pending intents (pre exchanges): {npre}{' — ' + detail if detail else ''}\n")
        out.write("counters so far: " + ", ".join(f"{k}={open_pd[k]}" for k, _ in COUNTERS) + "\n")
    else:
        out.write("no open payday\n")
    if last:
        out.write(
            f"last finished payday {last['id']}: {_ts(last['ts_start'])} to {_ts(last['ts_end'])}, "
            f"{last['ntransfers']} transfers ({last['transfer_volume']}), {last['ncharges']} charges "
            f"({last['charge_volume']}), {last['nachs']} payouts ({last['ach_volume']})\n"
        )
    elif not open_pd:
        out.write("no payday has run yet\n")
    return 0
