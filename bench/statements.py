"""Where a payday's time goes, statement by statement: `python -m bench.run --statements N`.

pg_stat_statements, loaded when the server starts and set to track every statement, times
each statement the runner sends and each statement the payday's SQL functions run inside
them. Before each payday the bench clears what it holds for the payday's database. After
the payday it keeps the N statements that took longest in all, summed over their calls.

A statement's time includes the statements it runs, so the times do not add up to the
payday's total. Tracking every nested statement costs time of its own: a run with
`--statements` is for reading, and the headline figures come from runs without it.

With `--tuned-server` the bench starts its server with SETTINGS. With `--dsn`, the server
must already load the module (shared_preload_libraries). The bench then creates the
extension in the database of `--dsn` if it is missing. When it cannot, it says why and
runs without the profile.
"""
from __future__ import annotations

from typing import Any

import psycopg

SETTINGS = {
    "shared_preload_libraries": "pg_stat_statements",
    "pg_stat_statements.track": "all",
    "pg_stat_statements.max": "10000",
}


def unavailable(admin_dsn: str) -> str | None:
    """None when the server behind `admin_dsn` can profile a payday (the extension created
    there if it was missing), else why it cannot."""
    try:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            row = conn.execute("SELECT current_setting('shared_preload_libraries')").fetchone()
            loaded = [s.strip().strip('"') for s in (row[0] if row else "").split(",")]
            if "pg_stat_statements" not in loaded:
                return ("the server does not load pg_stat_statements (add it to shared_preload_libraries "
                        "and restart, or use --tuned-server)")
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    except psycopg.Error as e:
        return f"pg_stat_statements cannot be used here: {str(e).strip().splitlines()[0]}"
    return None


def track(admin_dsn: str) -> str:
    """What the server tracks: 'all' (nested statements too) or 'top'."""
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        row = conn.execute("SELECT current_setting('pg_stat_statements.track')").fetchone()
    return str(row[0]) if row else "unknown"


def reset(admin_dsn: str, dbname: str) -> None:
    """Forget what pg_stat_statements holds for database `dbname` (the load's statements)."""
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_statements_reset(0, (SELECT oid FROM pg_database WHERE datname = %s), 0)",
                     (dbname,))


def top(admin_dsn: str, dbname: str, n: int) -> list[dict[str, Any]]:
    """The `n` statements of database `dbname` with the longest total execution time:
    the normalized text (whitespace folded), calls, total milliseconds, and whether the
    runner sent it (toplevel) or a function ran it."""
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        rows = conn.execute(
            """
            SELECT regexp_replace(btrim(s.query), '\\s+', ' ', 'g'), s.calls, s.total_exec_time, s.toplevel
              FROM pg_stat_statements s
              JOIN pg_database d ON d.oid = s.dbid
             WHERE d.datname = %s
             ORDER BY s.total_exec_time DESC
             LIMIT %s
            """,
            (dbname, n),
        ).fetchall()
    return [{"query": q, "calls": int(c), "ms": round(float(ms), 1), "toplevel": bool(t)} for q, c, ms, t in rows]


def lines(statements: list[dict[str, Any]], width: int = 96) -> list[str]:
    """The report's lines for one payday's statements."""
    out = [(f"  the {len(statements)} statements that took longest (pg_stat_statements; ms summed over calls; "
            "a statement's time includes what it runs; '>' = run inside a function)")]
    for s in statements:
        nested = " " if s["toplevel"] else ">"
        out.append(f"  {s['ms']:>10,.1f} ms {s['calls']:>8,}x {nested} {s['query'][:width]}")
    return out
