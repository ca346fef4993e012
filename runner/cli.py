"""The `payday` command line.

Exit codes (also in docs/cli.md):
  0  success, or nothing to do (the last payday finished less than 6 days ago)
  1  unexpected error
  2  usage error (bad arguments)
  3  another payday runner holds the lock on this database
  4  database unreachable, a bad DSN, or a database without the payday schema
  5  processor misconfigured or unreachable (missing keys, authentication, network)
  6  invariant violation (payday.check_recent() not empty, payday.finish() refused, contradicting outcome)
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import traceback
from typing import Any, Sequence

from payday import log as plog
from payday.run import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_USAGE,
    RunError,
    redact,
)

EPILOG = """\
examples:
  payday migrate                          create or upgrade the schema
  payday plan                             what a payday now would charge, move and pay out
  payday run                              run (or resume) this week's payday; cron-friendly
  payday run --processor sandbox          rehearse with the sandbox processor for everyone
  payday run --concurrency 4 --rps 20     gentler on the processors
  payday status                           where the open payday stands
  payday report --json --payday 12        counters of payday 12 as JSON
  payday demo                             a throwaway database, sample community, sandbox payday

configuration:
  database  --dsn, else DATABASE_URL, else the libpq PG* variables (PGHOST, PGDATABASE, ...)
  stripe    STRIPE_SECRET_KEY [, STRIPE_API_BASE]   (environment only, never arguments)
  balanced  BALANCED_API_KEY [, BALANCED_API_BASE]  (environment only, never arguments)

exit codes:
  0 ok / nothing to do, 1 unexpected error, 2 usage, 3 another runner holds the lock,
  4 database unreachable, bad DSN or not migrated, 5 processor misconfigured or unreachable,
  6 invariant violation (payday.check_recent() not empty, finish refused)
"""


def _positive_int(s: str) -> int:
    v = int(s)
    if v < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return v


def _positive_float(s: str) -> float:
    v = float(s)
    if not v > 0 or v == float("inf"):
        raise argparse.ArgumentTypeError("must be a positive number")
    return v


def _non_negative_float(s: str) -> float:
    v = float(s)
    if not v >= 0 or v == float("inf"):
        raise argparse.ArgumentTypeError("must be zero or a positive number")
    return v


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--dsn", default=argparse.SUPPRESS,
        help="libpq connection string or URI (default: DATABASE_URL, else the PG* variables); "
        "prefer a ~/.pgpass or PGPASSWORD for the password, arguments show in ps",
    )
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="debug logs and full tracebacks on errors")

    p = argparse.ArgumentParser(
        prog="payday",
        description="Run the weekly payday of a tipping platform. The database (schema payday) "
        "holds every money rule; this command calls the card and bank processors and records "
        "each result through the SQL functions.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    kw: dict[str, Any] = {"parents": [common], "formatter_class": argparse.RawDescriptionHelpFormatter}

    sub.add_parser("migrate", help="upgrade the database to the latest schema", **kw,
                   description="Create or upgrade schema payday (Alembic); running it twice is a no-op.")

    r = sub.add_parser(
        "run", help="run or resume a payday", **kw,
        description="Run this week's payday, or resume the open one where it stopped. Every charge and "
        "credit is recorded as an intent before the processor call, so a crash is safe: rerun and the "
        "runner first reconciles what was in flight. Exits 0 without doing anything when the last payday "
        "finished less than 6 days ago (unless --force).",
        epilog="examples:\n  payday run\n  payday run --processor sandbox --latency 0.1\n"
        "  payday run --concurrency 16 --rps 50\n",
    )
    r.add_argument("--processor", choices=["sandbox"],
                   help="use this processor for everyone (default: each participant's own, "
                   "Balanced when it has a balanced_account_uri, else Stripe)")
    r.add_argument("--concurrency", type=_positive_int, default=8, metavar="N",
                   help="processor calls in flight at once (default 8, fine for Stripe's limits)")
    r.add_argument("--rps", type=_positive_float, default=None, metavar="X",
                   help="at most X processor requests per second (default: no ceiling; 429s are honoured)")
    r.add_argument("--force", action="store_true",
                   help="start a new payday even if the last one finished less than 6 days ago")
    r.add_argument("--latency", type=_non_negative_float, default=None, metavar="SECONDS",
                   help="simulated latency of each sandbox call (only with --processor sandbox)")

    pl = sub.add_parser("plan", help="what a payday now would do, changing nothing", **kw,
                        description="Simulate a payday inside one transaction that is rolled back: the "
                        "charges, tip transfers and payouts it would make, assuming every charge succeeds "
                        "and every bank account is a merchant.")
    pl.add_argument("--json", action="store_true", help="machine-readable, with every charge, transfer, payout")

    st = sub.add_parser("status", help="where the open payday stands", **kw)
    st.add_argument("--json", action="store_true", help="machine-readable output")

    rp = sub.add_parser("report", help="counters of past paydays", **kw,
                        description="The counters of every payday (SPEC section 2), one line per payday.")
    rp.add_argument("--json", action="store_true", help="JSON (amounts as strings)")
    rp.add_argument("--payday", type=_positive_int, metavar="N", help="only payday N, shown vertically")

    d = sub.add_parser("demo", help="a throwaway database, a sample community, a sandbox payday", **kw,
                       description="Create payday_demo_<random> on the local server (or a throwaway "
                       "cluster when none is reachable), migrate it, fill it with a dozen participants, "
                       "run a sandbox payday, print the report and the invariant check, drop it.")
    d.add_argument("--keep", action="store_true", help="keep the demo database (prints its DSN)")
    return p


def resolve_dsn(arg: str | None) -> str:
    """--dsn, else DATABASE_URL, else '' (libpq then reads the PG* variables)."""
    try:
        from payday import config  # helper-1's resolution, when present

        fn = getattr(config, "resolve_dsn", None)
        if callable(fn):
            return str(fn(arg))
    except ImportError:
        pass
    return arg or os.environ.get("DATABASE_URL") or ""


def _run(args: argparse.Namespace, dsn: str) -> int:
    from payday.run import run_payday

    if args.latency is not None and args.processor != "sandbox":
        raise _Usage("--latency only applies with --processor sandbox")

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt  # unwinds through the runner, which flushes recorded outcomes

    signal.signal(signal.SIGTERM, on_term)
    res = run_payday(
        dsn,
        processor_override=args.processor,
        concurrency=args.concurrency,
        rps=args.rps,
        force=args.force,
        latency=args.latency or 0.0,
        log=plog.get(),
    )
    print(res.message)
    return res.exit_code


class _Usage(Exception):
    pass


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help (0) or a usage error (2)
        return int(e.code) if isinstance(e.code, int) else EXIT_USAGE
    verbose = bool(getattr(args, "verbose", False))
    plog.setup(verbose)
    try:
        dsn = resolve_dsn(getattr(args, "dsn", None))
        if args.command == "migrate":
            from payday.run import connect

            connect(dsn).close()  # a clean exit 4 when unreachable
            from payday import migrate

            migrate.upgrade(dsn)
            plog.get().info("database is at the latest schema")
            return EXIT_OK
        if args.command == "run":
            return _run(args, dsn)
        if args.command == "plan":
            from payday.plan import plan

            plan(dsn, sys.stdout, as_json=args.json)
            return EXIT_OK
        if args.command == "status":
            from payday.report import status

            return status(dsn, sys.stdout, as_json=args.json)
        if args.command == "report":
            from payday.report import report

            return report(dsn, sys.stdout, as_json=args.json, payday_id=args.payday)
        if args.command == "demo":
            from payday.demo import demo

            return demo(getattr(args, "dsn", None), keep=args.keep, out=sys.stdout)
        parser.error(f"unknown command {args.command}")
    except _Usage as e:
        parser.print_usage(sys.stderr)
        print(f"payday: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except RunError as e:
        if verbose:
            traceback.print_exc()
        print(f"payday: {redact(str(e))}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("payday: interrupted; rerun to resume (in-flight exchanges are reconciled first)", file=sys.stderr)
        return 130
    except Exception as e:
        from payday.run import sql_error

        import psycopg

        if isinstance(e, psycopg.Error):
            err = sql_error(e)
            if verbose:
                traceback.print_exc()
            print(f"payday: {err}", file=sys.stderr)
            return err.exit_code
        if verbose:
            traceback.print_exc()
        first = (str(e).strip().splitlines() or [""])[0]
        print(f"payday: unexpected error: {type(e).__name__}: {redact(first)} (--verbose for details)",
              file=sys.stderr)
        return EXIT_ERROR
    return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
