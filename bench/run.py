"""The payday benchmark: generated communities, a full sandbox payday through the real
runner, the row-by-row baseline on a copy of the same data, and the external-call figure.

    python -m bench.run --sizes 1k,10k,100k,1m --json out.json
    python -m bench.run --sizes 10k --baseline-sizes 10k --repeat 5  # the 100x comparison only
    python -m bench.run --sizes none --latency 0.1 --charges 10000 # the external-call figure only

For each size it creates database `bench_<size>` on the server of `--dsn`, migrates it
(payday.migrate.upgrade), loads the community (bench/generate.py, COPY) and ANALYZEs it;
copies it for the baseline when the size is one of `--baseline-sizes` (CREATE DATABASE
... TEMPLATE); checkpoints the server; runs `payday.run.run_payday(dsn,
processor_override='sandbox')` in a child process (so its peak RSS is the runner's own);
checks `payday.check()`. With `--repeat N` it does all that N times, loading the size
afresh each time (the same data: the generator is deterministic), and shows the median
run. It then times the baseline (bench/baseline.py) on the copy of the last load, checks
that both databases ended in the same state, prints baseline / median, and drops both
databases unless `--keep`.

Phases (start, payin charges, tips, clear, payout, finish) are measured from the runner's
own statements: the child wraps `payday.run.connect` so each statement of the runner's
main connection is timed, and the phase boundaries are the calls to payday.start(),
payday.pay_tips(), payday.clear_pending() and payday.finish(). Rows per phase are read
from the database afterwards (see ROWS below). `--statements N` adds, per payday, the N
statements that took longest, those the SQL functions run included (bench/statements.py).
The report ends with the scale targets, met or not by this run (bench/targets.py).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import resource
import subprocess
import sys
import time
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from bench import generate, statements, targets
from bench.baseline import run_baseline

DEFAULT_DSN = os.environ.get("BENCH_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=postgres")
PHASES = ("start", "payin charges", "tips", "clear", "payout", "finish")
ROWS = {
    "start": "participants given pending = 0 (claimed before ts_start)",
    "payin charges": "charge exchanges (recorded pre, charged, outcome recorded)",
    "tips": "tip transfers inserted (and as many balance/pending moves)",
    "clear": "participants whose pending was cleared",
    "payout": "credit exchanges (after merchant checks)",
    "finish": "rows payday.check() reads (participants + transfers + exchanges)",
}


# -- the child: one payday through the real runner ----------------------------------------

class PerCall:
    """The sandbox seen as a processor without a batch API (as Stripe and Balanced are):
    the runner then makes one call per charge, and the latency is paid per call."""

    def __init__(self, inner: Any):
        self._inner = inner
        self.name = inner.name

    def __getattr__(self, attr: str) -> Any:
        if attr.endswith("_many"):
            raise AttributeError(attr)
        return getattr(self._inner, attr)


def _child(dsn: str, concurrency: int, latency: float, verbose: bool, per_call: bool = False) -> dict[str, Any]:
    import payday.run as prun

    if per_call:
        make = prun._make_processor  # type: ignore[attr-defined]

        def make_per_call(*a: Any, **kw: Any) -> Any:
            return PerCall(make(*a, **kw))

        prun._make_processor = make_per_call  # type: ignore[attr-defined]

    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(message)s")
    events: list[tuple[str, float, float]] = []

    class TimedCursor(psycopg.Cursor):  # type: ignore[type-arg]
        def execute(self, query: Any, params: Any = None, **kw: Any) -> Any:  # type: ignore[override]
            t0 = time.perf_counter()
            try:
                return super().execute(query, params, **kw)
            finally:
                events.append((str(query), t0, time.perf_counter()))

    original = prun.connect

    def connect(*a: Any, **kw: Any) -> psycopg.Connection[Any]:
        kw.setdefault("cursor_factory", TimedCursor)
        return original(*a, **kw)

    prun.connect = connect  # type: ignore[assignment]
    t0 = time.perf_counter()
    result = prun.run_payday(dsn, processor_override="sandbox", concurrency=concurrency, latency=latency,
                             log=logging.getLogger("payday"))
    t_end = time.perf_counter()

    def first(fragment: str) -> tuple[float, float] | None:
        for q, a, b in events:
            if fragment in q:
                return a, b
        return None

    marks = {name: first(f"payday.{name}()") for name in ("start", "pay_tips", "clear_pending", "finish")}
    phases: dict[str, float] = {}
    if all(marks.values()):
        s, tp, cl, fi = (marks[k] for k in ("start", "pay_tips", "clear_pending", "finish"))
        assert s and tp and cl and fi
        phases = {
            "start": s[1] - t0,
            "payin charges": tp[0] - s[1],
            "tips": tp[1] - tp[0],
            "clear": cl[1] - tp[1],
            "payout": fi[0] - cl[1],
            "finish": t_end - fi[0],
        }
    if verbose:
        for q, a, b in events:
            if b - a > 0.05:
                print(f"  {b - a:7.3f}s at {a - t0:7.3f}s  {' '.join(q.split())[:100]}", file=sys.stderr)
        print(f"  run_payday returned at {t_end - t0:.3f}s", file=sys.stderr)
    return {
        "status": result.status,
        "payday_id": result.payday_id,
        "seconds": t_end - t0,
        "phases": phases,
        "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "counters": {k: str(v) for k, v in result.counters.items()},
    }


def run_child(dsn: str, concurrency: int, latency: float, verbose: bool, per_call: bool = False) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.run", "--child", "--dsn", dsn,
           "--concurrency", str(concurrency), "--latency", str(latency)]
    cmd += (["--verbose"] if verbose else []) + (["--per-call"] if per_call else [])
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=False, cwd=root, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"the payday child failed with exit code {proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- after the run ------------------------------------------------------------------------------

def rows_per_phase(dsn: str, payday_id: int) -> dict[str, int]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            """
            SELECT (SELECT count(*) FROM payday.participants p, payday.paydays d
                     WHERE d.id = %(id)s AND p.claimed_time < d.ts_start),
                   (SELECT count(*) FROM payday.exchanges WHERE payday_id = %(id)s AND kind = 'charge'),
                   (SELECT count(*) FROM payday.transfers WHERE payday_id = %(id)s AND context = 'tip'),
                   (SELECT count(*) FROM payday.exchanges WHERE payday_id = %(id)s AND kind = 'credit'),
                   (SELECT count(*) FROM payday.participants) + (SELECT count(*) FROM payday.transfers)
                     + (SELECT count(*) FROM payday.exchanges)
            """, {"id": payday_id}).fetchone()
    assert row is not None
    start, charges, tips, credits, checked = (int(v) for v in row)
    return {"start": start, "payin charges": charges, "tips": tips, "clear": start,
            "payout": credits, "finish": checked}


def violations(dsn: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute("SELECT * FROM payday.check()").fetchall()


FINGERPRINTS = {
    "participants": "SELECT md5(string_agg(concat_ws('|', username, balance, pending, last_bill_result = '', "
                    "last_ach_result = ''), ',' ORDER BY username)) FROM payday.participants",
    "transfers": "SELECT md5(string_agg(concat_ws('|', tipper, tippee, amount, context), ',' "
                 "ORDER BY tipper, tippee, amount)) FROM payday.transfers",
    "exchanges": "SELECT md5(string_agg(concat_ws('|', participant, amount, fee, status), ',' "
                 "ORDER BY participant, amount)) FROM payday.exchanges",
    "counters": "SELECT md5(string_agg(concat_ws('|', nparticipants, ntippers, ntips, ntransfers, transfer_volume, "
                "ncc_failing, ncc_missing, ncharges, charge_volume, charge_fees_volume, nachs, ach_volume, "
                "ach_fees_volume, nach_failing), ',' ORDER BY id)) FROM payday.paydays",
}


def fingerprint(dsn: str) -> dict[str, str]:
    """What both paydays must agree on (error texts differ: compared as failed or not)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        return {k: str(conn.execute(q).fetchone()[0]) for k, q in FINGERPRINTS.items()}  # type: ignore[index]


def server_facts(dsn: str) -> dict[str, str]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        facts = {"server_version": str(conn.execute("SHOW server_version").fetchone()[0])}  # type: ignore[index]
        for name in ("shared_buffers", "work_mem", "maintenance_work_mem", "max_wal_size", "synchronous_commit",
                     "max_parallel_workers_per_gather", "jit", "fsync", "full_page_writes", "wal_compression",
                     "checkpoint_timeout", "effective_cache_size"):
            facts[name] = str(conn.execute(f"SHOW {name}").fetchone()[0])  # type: ignore[index]
    return facts


def machine() -> dict[str, Any]:
    mem = 0
    try:
        with open("/proc/meminfo") as f:
            mem = int(f.readline().split()[1]) // 1024
    except OSError:
        pass
    return {"cores": os.cpu_count(), "memory_mb": mem, "cpu": cpu_model(), "python": platform.python_version(),
            "platform": platform.platform()}


def cpu_model() -> str:
    """The processor's name as the kernel gives it (/proc/cpuinfo), else platform's."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


# A fixed statement of the payday's kind (numeric sums hashed by a text key, one backend):
# the server's CPU speed, which our side of the ratio follows.
CPU_PROBE = """
SELECT count(*), sum(s) FROM (
    SELECT 'p' || (i % 20000) AS k, sum((i % 2400)::numeric(35,2) / 100) AS s
      FROM generate_series(1, 400000) i GROUP BY 1) g
"""


def cpu_probe(conn: psycopg.Connection[Any], runs: int) -> float:
    """CPU_PROBE's median time in ms over `runs` runs, after one warm-up, on `conn`."""
    conn.execute("SET jit = off")
    conn.execute("SET work_mem = '256MB'")
    conn.execute(CPU_PROBE)
    cpu: list[float] = []
    for _ in range(runs):
        t0 = time.perf_counter()
        conn.execute(CPU_PROBE).fetchall()
        cpu.append(time.perf_counter() - t0)
    return round(1000 * sorted(cpu)[len(cpu) // 2], 2)


def probes(dsn: str, runs: int = 5, commits: int = 200) -> dict[str, float]:
    """Three figures of the machine, so that runs on different machines can be read side by
    side (medians): `cpu_ms`, CPU_PROBE's time (`runs` of it, after one warm-up);
    `roundtrip_ms`, a `SELECT 1` as the client sees it; `commit_ms`, an autocommit single-row
    INSERT (a round trip and a WAL flush). The report sets the last two against the
    baseline's queries and commits (`commits` of each)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        cpu = cpu_probe(conn, runs)
        trip: list[float] = []
        for _ in range(commits):
            t0 = time.perf_counter()
            conn.execute("SELECT 1").fetchone()
            trip.append(time.perf_counter() - t0)
        table = f"bench_probe_commits_{os.getpid()}"  # a logged table: its commits flush WAL
        conn.execute(f"CREATE TABLE {table} (i integer)")
        try:
            commit: list[float] = []
            for i in range(commits):
                t0 = time.perf_counter()
                conn.execute(f"INSERT INTO {table} VALUES (%s)", (i,))
                commit.append(time.perf_counter() - t0)
        finally:
            conn.execute(f"DROP TABLE {table}")
    return {"cpu_ms": cpu,
            "roundtrip_ms": round(1000 * sorted(trip)[len(trip) // 2], 3),
            "commit_ms": round(1000 * sorted(commit)[len(commit) // 2], 3)}


# -- one size -----------------------------------------------------------------------------------

def settle(conn: psycopg.Connection[Any]) -> float | None:
    """CHECKPOINT after the load, as after any bulk load: a weekly payday starts on a server
    whose data is on disk, not one still writing out the gigabytes just loaded (at 1m the
    effect was inside the run-to-run spread: bench/README.md, sixth round). Seconds taken,
    or None when the role may not checkpoint (then the payday runs as it is). `conn` is in
    autocommit, so a refused CHECKPOINT leaves it usable."""
    t0 = time.perf_counter()
    try:
        conn.execute("CHECKPOINT")
    except psycopg.Error:
        return None
    return time.perf_counter() - t0


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run whose total time is the median (the lower middle one for an even count)."""
    return sorted(runs, key=lambda r: r["seconds"])[(len(runs) - 1) // 2]


def one_payday(args: argparse.Namespace, dsn: str, say: Any) -> dict[str, Any]:
    """One payday through the runner on the freshly loaded `dsn`: the server checkpointed
    and the CPU probe timed first (`cpu_probe_ms`, three runs: this machine's speed has moved
    by a fifth within an hour, bench/README.md, fifteenth round), then rows per phase and
    payday.check() read afterwards."""
    with psycopg.connect(args.dsn, autocommit=True) as conn:
        out: dict[str, Any] = {"checkpoint_s": settle(conn), "cpu_probe_ms": cpu_probe(conn, 3)}
    dbname = str(conninfo_to_dict(dsn)["dbname"])
    if args.statements:
        statements.reset(args.dsn, dbname)
    out.update(run_child(dsn, args.concurrency, 0.0, args.verbose))
    if args.statements:
        out["statements"] = statements.top(args.dsn, dbname, args.statements)
    out["rows"] = rows_per_phase(dsn, out["payday_id"])
    bad = violations(dsn)
    out["check_violations"] = len(bad)
    if bad:
        say(f"   payday.check() reports {len(bad)} violation(s), e.g. {bad[:3]}")
    return out


def bench_size(args: argparse.Namespace, size: str, baseline: bool, say: Any) -> dict[str, Any]:
    """`--repeat` paydays of `size`, each on the community loaded afresh (the generator is
    deterministic: the same data each time; a copy made with CREATE DATABASE ... TEMPLATE
    starts with nothing in shared buffers and ran 20% slower at 10k): a payday of half a
    second moves by a quarter from one run to the next on this machine, the baseline's
    minute does not, so the figures and the ratio are the median run's, and every run's
    total is kept (`runs_seconds`). The baseline runs on a copy of the last load, made
    before that load's payday."""
    name = f"{args.prefix}_{size.lower()}"
    base_name = f"{name}_baseline"
    out: dict[str, Any] = {"size": size}
    runs: list[dict[str, Any]] = []
    try:
        for i in range(args.repeat):
            last = i == args.repeat - 1
            say(f"== {size}: generating {name}" + (f" (payday {i + 1} of {args.repeat})" if args.repeat > 1 else ""))
            dsn, stats = generate.fresh_community(args.dsn, name, size, args.seed, log=say)
            out["generate"] = stats.as_dict()
            if baseline and last:
                base_dsn = generate.create_database(args.dsn, base_name, template=name)
            say(f"== {size}: payday through the runner (sandbox, concurrency {args.concurrency})")
            runs.append(one_payday(args, dsn, say))
        child = median_run(runs)
        out["checkpoint_s"] = child["checkpoint_s"]
        out["payday"] = {k: v for k, v in child.items() if k not in ("checkpoint_s", "cpu_probe_ms")}
        out["payday"]["runs_seconds"] = [r["seconds"] for r in runs]
        out["payday"]["runs_cpu_probe_ms"] = [r["cpu_probe_ms"] for r in runs]
        out["payday"]["check_violations"] = max(r["check_violations"] for r in runs)
        if any(r["status"] != "finished" for r in runs):
            out["payday"]["status"] = "not finished in every run"
        if baseline:
            say(f"== {size}: baseline (row by row) on {base_name}, timeout {args.baseline_timeout:.0f}s")
            b = run_baseline(base_dsn, timeout=args.baseline_timeout)
            out["baseline"] = {
                "seconds": b.seconds, "finished": b.finished, "estimated_seconds": b.estimated_seconds,
                "extrapolated": not b.finished, "visits": b.visits, "total_visits": b.total_visits,
                "transfers": b.transfers, "charges": b.charges, "credits": b.credits,
                "queries": b.queries, "commits": b.commits, "phases": b.phases,
            }
            if b.finished:
                same = fingerprint(dsn) == fingerprint(base_dsn)  # against the last payday's end state
                out["baseline"]["same_result"] = same
                out["baseline"]["check_violations"] = len(violations(base_dsn))
            out["ratio"] = b.estimated_seconds / child["seconds"] if child["seconds"] else None
    finally:
        if not args.keep:
            generate.drop_database(args.dsn, name)
            if baseline:
                generate.drop_database(args.dsn, base_name)
    return out


def bench_latency(args: argparse.Namespace, say: Any) -> dict[str, Any]:
    """`--charges` sandbox charges at `--latency` seconds each, twice: one processor call per
    charge (as with Stripe or Balanced, which have no batch API), `--latency-concurrency`
    calls in flight; and the sandbox's own batch API as the runner uses it (micro-batches,
    the latency paid once per batch)."""
    from payday import migrate

    out: dict[str, Any] = {"charges": args.charges, "latency_s": args.latency, "concurrency": args.latency_concurrency}
    for mode, per_call in (("per_call", True), ("batched", False)):
        name = f"{args.prefix}_latency"
        say(f"== external calls ({mode.replace('_', ' ')}): {args.charges} sandbox charges at "
            f"{args.latency * 1000:.0f} ms, concurrency {args.latency_concurrency}")
        dsn = generate.create_database(args.dsn, name)
        try:
            migrate.upgrade(dsn)
            generate.load_charge_community(dsn, args.charges)
            child = run_child(dsn, args.latency_concurrency, args.latency, args.verbose, per_call)
            rows = rows_per_phase(dsn, child["payday_id"])
            out[mode] = {"charges": rows["payin charges"], "charges_seconds": child["phases"].get("payin charges"),
                         "payday_seconds": child["seconds"], "maxrss_mb": child["maxrss_mb"],
                         "check_violations": len(violations(dsn))}
        finally:
            if not args.keep:
                generate.drop_database(args.dsn, name)
    return out


# -- reporting --------------------------------------------------------------------------------------

def _fmt_s(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def report(results: dict[str, Any]) -> str:
    lines: list[str] = []
    sizes = results["sizes"]
    m, probe = results.get("machine", {}), results.get("probes")
    if m:
        lines.append(f"machine: {m.get('cpu', 'unknown')}, {m.get('cores')} cores, {m.get('memory_mb', 0) / 1024:.1f} GiB")
    if probe:
        lines.append(f"  probes: a fixed aggregate (bench.run.CPU_PROBE) {probe['cpu_ms']:.0f} ms on one core; "
                     f"a SELECT 1 {probe['roundtrip_ms']:.3f} ms; an autocommit INSERT {probe['commit_ms']:.3f} ms")
    for r in sizes:
        p = r["payday"]
        lines.append(f"\n{r['size']}: {r['generate']['participants']} participants, {r['generate']['tips']} tips "
                     f"(payday {p['status']}, check() violations: {p['check_violations']})")
        lines.append(f"  {'phase':<14} {'seconds':>9} {'rows':>10} {'rows/s':>12}")
        for ph in PHASES:
            sec = p["phases"].get(ph)
            n = p["rows"].get(ph, 0)
            rate = f"{n / sec:,.0f}" if sec else "-"
            lines.append(f"  {ph:<14} {_fmt_s(sec):>9} {n:>10,} {rate:>12}")
        lines.append(f"  {'total':<14} {p['seconds']:>9.2f}   runner peak RSS {p['maxrss_mb']:.0f} MB")
        runs = p.get("runs_seconds", [])
        if len(runs) > 1:
            lines.append(f"  (the median of {len(runs)} paydays, each on the same data loaded afresh: "
                         + ", ".join(f"{x:.2f}" for x in runs) + " s)")
        if p.get("runs_cpu_probe_ms"):
            lines.append("  (the CPU probe just before " + ("each payday" if len(runs) > 1 else "the payday") + ": "
                         + ", ".join(f"{x:.0f}" for x in p["runs_cpu_probe_ms"]) + " ms)")
        if p.get("statements"):
            lines += statements.lines(p["statements"])
        if "baseline" in r:
            b = r["baseline"]
            est = " (extrapolated)" if b["extrapolated"] else ""
            same = b.get("same_result")
            lines.append(f"  baseline (row by row): {b['estimated_seconds']:.1f}s{est}, {b['queries']:,} queries, "
                         f"{b['commits']:,} commits; same result: {'-' if same is None else same}; "
                         f"set-based is {r['ratio']:.0f}x faster")
            if probe:
                lines.append(f"  (at the probes' figures its queries would take ~{b['queries'] * probe['roundtrip_ms'] / 1000:.1f} s "
                             f"as bare round trips, and its commits ~{b['commits'] * probe['commit_ms'] / 1000:.1f} s "
                             "as bare autocommit INSERTs)")
    if sizes:
        lines.append("\nside by side")
        head = f"  {'':<22}" + "".join(f"{r['size']:>12}" for r in sizes)
        lines.append(head)

        def row(label: str, values: list[str]) -> None:
            lines.append(f"  {label:<22}" + "".join(f"{v:>12}" for v in values))

        row("participants", [f"{r['generate']['participants']:,}" for r in sizes])
        row("tips", [f"{r['generate']['tips']:,}" for r in sizes])
        for ph in PHASES:
            row(f"{ph} (s)", [_fmt_s(r["payday"]["phases"].get(ph)) for r in sizes])
        row("total (s)", [f"{r['payday']['seconds']:.2f}" for r in sizes])
        row("us per tip row", [f"{1e6 * r['payday']['seconds'] / r['generate']['tips']:.1f}" for r in sizes])
        row("runner RSS (MB)", [f"{r['payday']['maxrss_mb']:.0f}" for r in sizes])
        row("baseline (s)", [f"{r['baseline']['estimated_seconds']:.1f}" if "baseline" in r else "-" for r in sizes])
        row("speed-up", [f"{r['ratio']:.0f}x" if r.get("ratio") else "-" for r in sizes])
        row("generate+load (s)", [f"{sum(r['generate']['seconds'].values()):.1f}" for r in sizes])
    if results.get("latency"):
        lat = results["latency"]
        for mode, label in (("per_call", "one call per charge"), ("batched", "sandbox batch API")):
            if mode in lat:
                m = lat[mode]
                lines.append(f"\nexternal calls ({label}): {m['charges']:,} sandbox charges at "
                             f"{lat['latency_s'] * 1000:.0f} ms, concurrency {lat['concurrency']}: "
                             f"{_fmt_s(m['charges_seconds'])}s (whole payday {m['payday_seconds']:.2f}s)")
    found = results.get("targets") or targets.verdicts(results)
    if any(v["met"] is not None for v in found):
        lines += targets.lines(found)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1k,10k,100k", help="comma-separated: 1k,10k,100k,1m (or none)")
    ap.add_argument("--baseline-sizes", default="1k,10k", help="sizes also timed row by row (1k,10k)")
    ap.add_argument("--baseline-timeout", type=float, default=1800.0,
                    help="seconds before the baseline stops and its time is extrapolated")
    ap.add_argument("--json", default=None, help="write the results to this file")
    ap.add_argument("--dsn", default=DEFAULT_DSN, help="libpq conninfo of the server (env BENCH_DSN)")
    ap.add_argument("--tuned-server", action="store_true",
                    help="instead of --dsn, start a throwaway durable server configured for this machine's memory "
                         "(see tuned_settings) and run there")
    ap.add_argument("--seed", type=int, default=generate.DEFAULT_SEED)
    ap.add_argument("--concurrency", type=int, default=8, help="runner concurrency for the paydays")
    ap.add_argument("--repeat", type=int, default=1,
                    help="paydays per size, each on the size loaded afresh (--keep keeps the last load); figures "
                         "and ratio are the median run's, every run's total is in the JSON (default 1)")
    ap.add_argument("--latency", type=float, default=0.0,
                    help="with --charges: sandbox latency in seconds for the external-call figure (e.g. 0.1)")
    ap.add_argument("--charges", type=int, default=10_000, help="charges of the external-call figure")
    ap.add_argument("--latency-concurrency", type=int, default=64, help="runner concurrency for that figure")
    ap.add_argument("--prefix", default="bench", help="database names: <prefix>_<size>, <prefix>_<size>_baseline")
    ap.add_argument("--keep", action="store_true", help="keep the bench databases")
    ap.add_argument("--verbose", action="store_true", help="show the runner's log")
    ap.add_argument("--statements", type=int, default=0, metavar="N",
                    help="after each payday, the N statements that took longest, nested ones included "
                         "(pg_stat_statements; costs time: not for headline figures; see bench/statements.py)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--per-call", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.repeat < 1:
        raise SystemExit("--repeat must be at least 1")
    if args.statements < 0:
        raise SystemExit("--statements must be 0 (no profile) or more")

    if args.child:
        print(json.dumps(_child(args.dsn, args.concurrency, args.latency, args.verbose, args.per_call)))
        return 0

    def say(msg: str) -> None:
        print(msg, flush=True)

    if args.tuned_server:
        from payday.cluster import Cluster

        settings = tuned_settings() | (statements.SETTINGS if args.statements else {})
        say("== starting a throwaway server: " + " ".join(f"{k}={v}" for k, v in settings.items()))
        with Cluster(settings=settings) as cluster:
            args.dsn = cluster.dsn
            return run_all(args, say)
    return run_all(args, say)


def tuned_settings() -> dict[str, str]:
    """What a DBA would set for a dedicated payday server on this machine, durability untouched:
    a quarter of the memory as shared buffers (at most 8 GB), half as the planner's cache
    estimate, and WAL room for a payday's bulk writes without a checkpoint storm."""
    mem_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    return {
        "shared_buffers": f"{min(mem_mb // 4, 8192)}MB",
        "effective_cache_size": f"{mem_mb // 2}MB",
        "maintenance_work_mem": "1GB",
        "wal_buffers": "64MB",
        "max_wal_size": "16GB",
        "checkpoint_timeout": "30min",
        "checkpoint_completion_target": "0.9",
        "wal_compression": "lz4",
    }


def run_all(args: argparse.Namespace, say: Any) -> int:
    sizes = [] if args.sizes.strip().lower() in ("", "none") else [s.strip().lower() for s in args.sizes.split(",")]
    for s in sizes:
        generate.parse_size(s)
    baseline_sizes = {s.strip().lower() for s in args.baseline_sizes.split(",") if s.strip()}
    results: dict[str, Any] = {"machine": machine(), "server": server_facts(args.dsn), "probes": probes(args.dsn),
                               "seed": args.seed,
                               "concurrency": args.concurrency, "sizes": [], "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    if args.statements:
        why = statements.unavailable(args.dsn)
        results["statements"] = {"top": args.statements, "unavailable": why,
                                 "track": None if why else statements.track(args.dsn)}
        if why:
            say(f"== --statements: {why}; the paydays run without the profile")
            args.statements = 0
    for s in sizes:
        results["sizes"].append(bench_size(args, s, s in baseline_sizes, say))
    if args.latency > 0:
        results["latency"] = bench_latency(args, say)
    results["targets"] = targets.verdicts(results)
    say(report(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2, default=str)
        say(f"\nresults written to {args.json}")
    failed = any(r["payday"]["status"] != "finished" or r["payday"]["check_violations"] for r in results["sizes"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
