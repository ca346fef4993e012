"""`payday demo`: a throwaway database, a sample community, a sandbox payday, its report.

Creates `payday_demo_<random>` on the local server (or, when none is reachable, in a
throwaway cluster started for the occasion), migrates it, fills it through the two web
application INSERTs of SPEC section 2, runs a payday with the sandbox processor, prints
the report and `payday.check()`, and drops the database unless `keep`.
"""
from __future__ import annotations

import contextlib
import secrets
from typing import Iterator, TextIO

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from payday import log as plog
from payday.run import EXIT_INVARIANT, EXIT_OK, DatabaseUnreachable, RunError, connect, redact, run_payday

# (username, claimed days ago or None, is_suspicious, balance, balanced_account_uri, stripe_customer_id)
PARTICIPANTS: list[tuple[str, int | None, bool | None, str, str | None, str | None]] = [
    ("alice", 60, False, "0.00", None, "cus_alice"),  # card, tips generously
    ("bob", 55, False, "20.00", "/v1/marketplaces/demo/accounts/bob", None),  # bank, receives tips
    ("carol", 50, False, "40.00", "/v1/marketplaces/demo/accounts/carol", None),  # receives, is paid out
    ("dave", None, None, "0.00", None, None),  # an unclaimed stub: tips to him are pledges
    ("eve", 45, True, "0.00", None, "cus_eve"),  # suspicious: excluded from payday
    ("frank", 40, None, "0.00", None, "cus_frank"),  # unreviewed: never charged
    ("grace", 35, False, "0.00", None, "cus_fail_grace"),  # the sandbox declines this card
    ("heidi", 30, False, "50.00", "/v1/marketplaces/demo/accounts/nomerchant-heidi", None),  # not a merchant
    ("ivan", 25, False, "0.00", None, None),  # no funding source (ncc_missing)
    ("judy", 20, False, "100.00", None, "cus_judy"),  # rich enough, no charge needed
    ("mallory", 15, False, "0.00", "/v1/marketplaces/demo/accounts/mallory", None),  # card via Balanced
    ("oscar", 10, False, "15.00", "/v1/marketplaces/demo/accounts/fail-oscar", None),  # payout declined
]
# (days ago first tipped, days ago of this row, tipper, tippee, amount): append-only history
TIPS: list[tuple[int, int, str, str, str]] = [
    (30, 30, "alice", "bob", "3.00"),
    (30, 20, "alice", "bob", "5.00"),  # a raise
    (28, 28, "alice", "carol", "2.00"),
    (27, 27, "alice", "dave", "1.00"),  # a pledge to an unclaimed stub
    (26, 26, "bob", "alice", "1.00"),
    (25, 25, "eve", "bob", "10.00"),  # from a suspicious tipper: ignored
    (24, 24, "frank", "carol", "3.00"),
    (23, 23, "grace", "bob", "4.00"),
    (22, 22, "ivan", "carol", "2.00"),
    (21, 21, "judy", "carol", "8.00"),
    (21, 5, "judy", "carol", "0.00"),  # stopped
    (20, 20, "judy", "heidi", "6.00"),
    (14, 14, "mallory", "alice", "25.00"),
    (12, 12, "mallory", "bob", "0.50"),
    (11, 11, "heidi", "carol", "1.00"),
]


def seed(conn: psycopg.Connection) -> None:
    """Fill the demo community through the web application's own INSERTs (SPEC section 2)."""
    with conn.cursor() as cur:
        for username, days, suspicious, balance, buri, scid in PARTICIPANTS:
            cur.execute(
                "INSERT INTO payday.participants (username, claimed_time, is_suspicious, balance, "
                "balanced_account_uri, stripe_customer_id) VALUES "
                "(%s, now() - make_interval(days => %s), %s, %s, %s, %s)",
                (username, days, suspicious, balance, buri, scid),
            )
        for cdays, mdays, tipper, tippee, amount in TIPS:
            cur.execute(
                "INSERT INTO payday.tips (ctime, mtime, tipper, tippee, amount) VALUES "
                "(now() - make_interval(days => %s), now() - make_interval(days => %s), %s, %s, %s)",
                (cdays, mdays, tipper, tippee, amount),
            )


def _reachable(dsn: str) -> str | None:
    """A DSN for the server's maintenance database when the server answers, else None."""
    for candidate in (dsn, make_conninfo(dsn, dbname="postgres")):
        try:
            psycopg.connect(candidate, connect_timeout=3, autocommit=True).close()
            return candidate
        except psycopg.Error:
            continue
    return None


@contextlib.contextmanager
def _server(dsn: str | None, out: TextIO) -> Iterator[tuple[str, bool]]:
    """Yields (admin DSN, throwaway?) for a reachable server, or a throwaway cluster."""
    from payday.config import resolve_dsn

    resolved = resolve_dsn(dsn)
    admin = _reachable(resolved)
    if admin is not None:
        yield admin, False
        return
    log = plog.get()
    log.info("no PostgreSQL server reachable at %s; starting a throwaway cluster", redact(resolved or "PG* defaults"))
    from payday.cluster import Cluster, ClusterError

    try:
        cluster = Cluster()
    except ClusterError as e:
        raise DatabaseUnreachable(f"no PostgreSQL server is reachable, and none can be started: {e}") from e
    try:
        with cluster:
            log.info("throwaway cluster on port %s in %s", cluster.port, cluster.root)
            yield cluster.dsn, True
    except ClusterError as e:
        raise DatabaseUnreachable(f"cannot start a throwaway PostgreSQL cluster: {e}") from e


def demo(dsn: str | None, *, keep: bool = False, out: TextIO) -> int:
    """Run the demo; returns the exit code (0, or 6 when payday.check() is not empty)."""
    from payday import migrate
    from payday.report import report

    log = plog.get()
    with _server(dsn, out) as (admin, throwaway):
        name = f"payday_demo_{secrets.token_hex(4)}"
        with connect(admin) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        params = {k: v for k, v in conninfo_to_dict(admin).items() if v is not None}
        params["dbname"] = name
        demo_dsn = make_conninfo("", **params)
        log.info("created database %s", name)
        out.write(f"demo database: {name}{' (throwaway cluster)' if throwaway else ''}\n")
        try:
            migrate.upgrade(demo_dsn)
            log.info("migrated %s", name)
            with connect(demo_dsn, autocommit=False) as conn:
                seed(conn)
            out.write(f"sample community: {len(PARTICIPANTS)} participants, {len(TIPS)} tip rows\n")
            res = run_payday(demo_dsn, processor_override="sandbox", concurrency=4, force=True, log=log)
            out.write(f"\n{res.message}\n\n")
            report(demo_dsn, out, payday_id=res.payday_id)
            with connect(demo_dsn) as conn:
                people = conn.execute(
                    "SELECT username, balance, "
                    "CASE last_bill_result WHEN '' THEN 'ok' ELSE coalesce(last_bill_result, '-') END, "
                    "CASE last_ach_result WHEN '' THEN 'ok' ELSE coalesce(last_ach_result, '-') END "
                    "FROM payday.participants ORDER BY username"
                ).fetchall()
                violations = conn.execute("SELECT what, who, expected, actual FROM payday.check()").fetchall()
            out.write("\nparticipant  balance  last_bill_result / last_ach_result\n")
            for u, bal, bill, ach in people:
                out.write(f"{u:<11} {bal:>8}  {bill} / {ach}\n")
            if violations:
                out.write(f"\npayday.check(): {len(violations)} violation(s)\n")
                for v in violations:
                    out.write("  " + " | ".join(str(x) for x in v) + "\n")
            else:
                out.write("\npayday.check(): no violation, every invariant holds\n")
            if keep and not throwaway:
                out.write(f"\nkept database {name}: payday --dsn '{redact(demo_dsn)}' report\n")
            elif keep:
                out.write(f"\n(--keep: {name} lived in a throwaway cluster, which is removed on exit)\n")
            return EXIT_INVARIANT if violations else EXIT_OK
        finally:
            if not keep or throwaway:
                try:
                    with connect(admin) as conn:
                        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                    log.info("dropped database %s", name)
                except RunError as e:
                    log.warning("could not drop %s: %s", name, e)
                except psycopg.Error as e:
                    log.warning("could not drop %s: %s", name, str(e).strip().splitlines()[0])
