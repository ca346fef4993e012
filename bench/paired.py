"""Paired paydays: two versions of the package, paid alternately on copies of one community.

On a 2-core machine whose speed moves by a fifth within minutes (and by a factor of two in
a slow spell: bench/README.md, seventeenth round), two full benchmark runs minutes apart do
not tell a 10% change from the noise. This pays each version in turn, round after round,
on a fresh copy (CREATE DATABASE ... TEMPLATE) of a community each version generated, so
both see the same machine within seconds of each other, and reports each side's median and
the median of the per-round ratios (B over A):

    python -m bench.paired --dsn 'host=127.0.0.1 port=55432 user=postgres' --rounds 20 \\
        --a /tmp/old-venv/bin/python:bench_10k_old --b /tmp/new-venv/bin/python:bench_10k_new

Each side is `python:template`: the interpreter of a venv where that version is installed,
and a database it generated (`python -m bench.generate --size 10k --dbname ...`, with that
venv: the schema is the version's own). A payday runs in a fresh process of that
interpreter, through `payday.run.run_payday(..., processor_override='sandbox')`, timed there
from the call to its return, after the copy's tables were read once and a CHECKPOINT.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from dataclasses import dataclass

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

# Runs in the side's own interpreter: argv = dsn, concurrency; prints the seconds.
ONE_PAYDAY = """
import sys, time
import psycopg
from payday.run import run_payday
dsn, concurrency = sys.argv[1], int(sys.argv[2])
with psycopg.connect(dsn, autocommit=True) as conn:
    for table in ('participants', 'current_tips', 'tips', 'exchanges'):
        conn.execute('SELECT count(*) FROM payday.' + table).fetchall()
    conn.execute('CHECKPOINT')
t0 = time.perf_counter()
result = run_payday(dsn, processor_override='sandbox', concurrency=concurrency)
seconds = time.perf_counter() - t0
if result.status != 'finished':
    raise SystemExit('payday ' + result.status + ': ' + result.message)
print(repr(seconds))
"""


@dataclass(frozen=True)
class Side:
    name: str
    python: str
    template: str


def side(name: str, spec: str) -> Side:
    python, sep, template = spec.rpartition(":")
    if not sep or not python or not template:
        raise argparse.ArgumentTypeError(f"--{name} wants python:template, not {spec!r}")
    return Side(name, python, template)


def one_payday(admin_dsn: str, s: Side, concurrency: int) -> float:
    """A fresh copy of the side's template, paid once by the side's interpreter."""
    db = f"paired_{s.name}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(db)))
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(db), sql.Identifier(s.template)))
    try:
        out = subprocess.run([s.python, "-c", ONE_PAYDAY, make_conninfo(admin_dsn, dbname=db), str(concurrency)],
                             check=True, capture_output=True, text=True)
        return float(out.stdout.strip().splitlines()[-1])
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(db)))


def summary(a: list[float], b: list[float]) -> dict[str, float | int]:
    ratios = [y / x for x, y in zip(a, b)]
    return {
        "rounds": len(a), "median_a": statistics.median(a), "median_b": statistics.median(b),
        "min_a": min(a), "min_b": min(b), "median_ratio_b_over_a": statistics.median(ratios),
        "b_faster_rounds": sum(y < x for x, y in zip(a, b)),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.paired", description=__doc__.split("\n\n")[0])
    p.add_argument("--dsn", default="host=127.0.0.1 user=postgres", help="a superuser's conninfo (default %(default)s)")
    p.add_argument("--a", required=True, type=lambda v: side("a", v), help="python:template of the reference")
    p.add_argument("--b", required=True, type=lambda v: side("b", v), help="python:template of the change")
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--json", help="write every round's seconds and the summary here")
    args = p.parse_args(argv)
    if args.rounds < 1:
        p.error("--rounds must be at least 1")
    admin = make_conninfo(args.dsn, dbname=conninfo_to_dict(args.dsn).get("dbname") or "postgres")
    a: list[float] = []
    b: list[float] = []
    for n in range(1, args.rounds + 1):
        a.append(one_payday(admin, args.a, args.concurrency))
        b.append(one_payday(admin, args.b, args.concurrency))
        print(f"round {n:3d}: a {a[-1]:8.3f} s   b {b[-1]:8.3f} s   b/a {b[-1] / a[-1]:.3f}", flush=True)
    s = summary(a, b)
    print(f"a ({args.a.template}): median {s['median_a']:.3f} s, min {s['min_a']:.3f} s")
    print(f"b ({args.b.template}): median {s['median_b']:.3f} s, min {s['min_b']:.3f} s")
    print(f"b/a: median of the rounds' ratios {s['median_ratio_b_over_a']:.3f}; "
          f"b faster in {s['b_faster_rounds']} of {s['rounds']} rounds")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"a": vars(args.a), "b": vars(args.b), "seconds_a": a, "seconds_b": b, "summary": s}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
