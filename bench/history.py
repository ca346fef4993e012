"""The checks as the history grows: one community paid N times in a row.

    python -m bench.history --size 100k --paydays 5 [--tuned-server | --dsn ...] [--json out.json]

Loads the size (bench/generate.py) into database `<prefix>_history_<size>`, pays the first
payday through the runner (sandbox processor), then each next one through the SQL functions
as a DBA would (processor 'manual', every charge and credit recorded as succeeded; the
same tips fall due again, since each payday starts later). After each payday it times
`payday.check()`, which re-adds the whole history, and `payday.check_recent()`, which adds
what came after the latest ledger mark (finish() marks every balance); `finish` is the
call that closed the payday (its check_recent() and the mark), `mark` the mark alone
(`payday.ledger_marks.marked_at` against the statement's start). Drops the database
unless `--keep`.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import psycopg

from bench import generate
from bench.run import DEFAULT_DSN, cpu_model, tuned_settings


def timed(conn: psycopg.Connection, sql: str) -> tuple[float, list[tuple[Any, ...]]]:
    t0 = time.perf_counter()
    rows = conn.execute(sql).fetchall()  # type: ignore[arg-type]
    return time.perf_counter() - t0, rows


def manual_payday(conn: psycopg.Connection) -> float:
    """One payday through the SQL functions; returns the seconds finish() took."""
    conn.execute("SELECT payday.start()")
    conn.execute("SELECT count(*) FROM payday.charge_intents('manual')")
    record = ("SELECT payday.record_outcomes(coalesce(array_agg(id ORDER BY id), '{}'), "
              "coalesce(array_agg(true), '{}')) FROM payday.pending_exchanges()")
    conn.execute(record)
    conn.execute("SELECT * FROM payday.pay_tips()")
    conn.execute("SELECT payday.clear_pending()")
    conn.execute("SELECT count(*) FROM payday.credit_intents(ARRAY(SELECT username FROM payday.credits_due()), 'manual')")
    conn.execute(record)
    seconds, _ = timed(conn, "SELECT * FROM payday.finish()")
    return seconds


def one_row(conn: psycopg.Connection, n: int, finish_s: float | None) -> dict[str, Any]:
    full_s, full = timed(conn, "SELECT * FROM payday.check()")
    recent_s, recent = timed(conn, "SELECT * FROM payday.check_recent()")
    transfers, mark_s, nbalances = conn.execute(
        "SELECT (SELECT count(*) FROM payday.transfers), "
        "       extract(epoch FROM m.marked_at - d.ts_end), m.nbalances "
        "  FROM payday.paydays d LEFT JOIN payday.ledger_marks m ON m.payday_id = d.id "
        " ORDER BY d.id DESC LIMIT 1").fetchone()  # type: ignore[misc]
    return {"paydays": n, "transfers": transfers, "finish_s": finish_s, "mark_s": float(mark_s) if mark_s is not None else None,
            "marked_balances": nbalances, "check_s": full_s, "check_recent_s": recent_s,
            "violations": len(full) + len(recent)}


def run(args: argparse.Namespace, say: Any) -> dict[str, Any]:
    from payday.run import run_payday

    name = f"{args.prefix}_history_{args.size}"
    dsn, stats = generate.fresh_community(args.dsn, name, args.size, args.seed)
    say(f"== {args.size}: {stats.participants} participants, {stats.tips} tips loaded into {name}")
    out: dict[str, Any] = {"size": args.size, "cpu": cpu_model(), "rows": []}
    try:
        t0 = time.perf_counter()
        run_payday(dsn, processor_override="sandbox")
        say(f"  payday 1 through the runner in {time.perf_counter() - t0:.1f} s")
        with psycopg.connect(dsn, autocommit=True) as conn:
            out["rows"].append(one_row(conn, 1, None))
            for n in range(2, args.paydays + 1):
                finish_s = manual_payday(conn)
                out["rows"].append(one_row(conn, n, finish_s))
                say(f"  payday {n} through the SQL functions")
    finally:
        if not args.keep:
            generate.drop_database(args.dsn, name)
    return out


def report(out: dict[str, Any]) -> str:
    lines = [f"\n{out['size']} on {out['cpu']}: the checks after each payday",
             f"  {'paydays':>7} {'transfers':>11} {'finish':>8} {'mark':>8} {'check()':>9} {'check_recent()':>15}"]
    for r in out["rows"]:
        fin = f"{r['finish_s']:.2f}" if r["finish_s"] is not None else "-"
        mark = f"{r['mark_s']:.2f}" if r["mark_s"] is not None else "-"
        lines.append(f"  {r['paydays']:>7} {r['transfers']:>11,} {fin:>8} {mark:>8} {r['check_s']:>9.2f} "
                     f"{r['check_recent_s']:>15.2f}")
    lines.append("  (seconds; finish: the call that closed the payday, its check_recent() and the mark; "
                 "payday 1 went through the runner)")
    bad = sum(r["violations"] for r in out["rows"])
    lines.append(f"  violations reported: {bad}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.history", description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="10k", help="1k, 10k, 100k or 1m")
    ap.add_argument("--paydays", type=int, default=5, help="paydays in a row (at least 2)")
    ap.add_argument("--dsn", default=DEFAULT_DSN, help="libpq conninfo of the server (env BENCH_DSN)")
    ap.add_argument("--tuned-server", action="store_true", help="start a throwaway server, as bench.run does")
    ap.add_argument("--seed", type=int, default=generate.DEFAULT_SEED)
    ap.add_argument("--prefix", default="bench")
    ap.add_argument("--json", default=None, help="write the figures to this file")
    ap.add_argument("--keep", action="store_true", help="keep the database")
    args = ap.parse_args(argv)
    generate.parse_size(args.size)
    if args.paydays < 2:
        raise SystemExit("--paydays must be at least 2")

    def say(msg: str) -> None:
        print(msg, flush=True)

    if args.tuned_server:
        from payday.cluster import Cluster

        with Cluster(settings=tuned_settings()) as cluster:
            args.dsn = cluster.dsn
            out = run(args, say)
    else:
        out = run(args, say)
    say(report(out))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
    return 1 if any(r["violations"] for r in out["rows"]) else 0


if __name__ == "__main__":
    sys.exit(main())
