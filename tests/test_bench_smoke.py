"""The benchmark end to end at its smallest size (bench/): not a timing test.

Generates the 1k community (1,000 participants, 10,000 tips) in a fresh database, runs a
full sandbox payday through the real runner in a child process, runs the row-by-row
baseline on a copy of the same data, and checks that the payday finished, that
payday.check() is empty in both databases and that both ended in the same state.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from pathlib import Path

import psycopg
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/ lives beside the package

from bench import generate  # noqa: E402
from bench import run as bench_run  # noqa: E402


def test_generator_is_deterministic() -> None:
    from array import array

    def digest(seed: int) -> tuple[int, int]:
        n, t = generate.SIZES["1k"]
        stats = generate.Stats("1k", seed)
        flags, claims = bytearray(n), array("q", bytes(8 * n))
        people = hash("".join(generate.participant_lines(n, t, seed, stats, flags, claims)))
        tips = hash("".join(generate.tip_lines(n, t, seed, flags, claims)))
        return people, tips

    assert digest(7) == digest(7)
    assert digest(7) != digest(8)


def baseline_seconds(size: dict) -> float:  # type: ignore[type-arg]
    return float(size["baseline"]["estimated_seconds"])


def test_median_run_is_the_middle_total() -> None:
    runs = [{"seconds": s} for s in (0.9, 0.5, 0.7, 0.6)]
    assert bench_run.median_run(runs)["seconds"] == 0.6  # the lower middle of an even count
    assert bench_run.median_run(runs[:3])["seconds"] == 0.7
    assert bench_run.median_run(runs[:1])["seconds"] == 0.9


def test_probes_time_a_fixed_statement_round_trips_and_commits(pg_server) -> None:  # type: ignore[no-untyped-def]
    dsn = pg_server.dsn("postgres")
    with psycopg.connect(dsn, autocommit=True) as conn:
        before = conn.execute("SELECT pg_current_wal_flush_lsn()").fetchone()[0]  # type: ignore[index]
    got = bench_run.probes(dsn, runs=1, commits=20)
    assert set(got) == {"cpu_ms", "roundtrip_ms", "commit_ms"} and all(v > 0 for v in got.values())
    assert got["roundtrip_ms"] < got["cpu_ms"]  # a SELECT 1 is no 400,000-row aggregate
    with psycopg.connect(dsn, autocommit=True) as conn:
        flushed, left = conn.execute(
            "SELECT pg_current_wal_flush_lsn() - %s::pg_lsn, "
            "(SELECT count(*) FROM pg_class WHERE relname LIKE 'bench_probe_commits%%')", (str(before),)
        ).fetchone()  # type: ignore[misc]
    assert flushed > 0  # the commits flushed WAL: the probe table is a logged one
    assert left == 0  # and it is gone


def test_a_refused_checkpoint_leaves_the_probe_its_connection(pg_server) -> None:  # type: ignore[no-untyped-def]
    role = f"bench_no_checkpoint_{os.getpid()}"
    with psycopg.connect(pg_server.dsn("postgres"), autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} NOLOGIN")
        try:
            conn.execute(f"SET ROLE {role}")  # neither superuser nor pg_checkpoint
            assert bench_run.settle(conn) is None
            assert bench_run.cpu_probe(conn, 1) > 0
            conn.execute("RESET ROLE")
            assert isinstance(bench_run.settle(conn), float)
        finally:
            conn.execute("RESET ROLE")
            conn.execute(f"DROP ROLE {role}")


def test_report_shows_the_machine_and_the_probes() -> None:
    text = bench_run.report({
        "machine": {"cpu": "Some CPU", "cores": 2, "memory_mb": 2048},
        "probes": {"cpu_ms": 210.0, "roundtrip_ms": 0.05, "commit_ms": 0.1},
        "sizes": [],
    })
    assert "machine: Some CPU, 2 cores, 2.0 GiB" in text
    assert "210 ms on one core" in text and "SELECT 1 0.050 ms" in text and "INSERT 0.100 ms" in text


def test_repeat_must_be_positive() -> None:
    with pytest.raises(SystemExit, match="--repeat must be at least 1"):
        bench_run.main(["--sizes", "1k", "--repeat", "0"])


def test_bench_1k_end_to_end(pg_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "bench.json"
    prefix = f"bench_smoke_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    rc = bench_run.main([
        "--sizes", "1k", "--baseline-sizes", "1k", "--json", str(out),
        "--dsn", pg_server.dsn("postgres"), "--prefix", prefix, "--repeat", "2",
    ])
    results = json.loads(out.read_text())
    size = results["sizes"][0]
    payday = size["payday"]
    assert rc == 0
    assert payday["status"] == "finished"
    assert payday["check_violations"] == 0
    assert set(payday["phases"]) == set(bench_run.PHASES)
    assert payday["rows"]["tips"] > 0 and payday["rows"]["payin charges"] > 0 and payday["rows"]["payout"] > 0
    assert size["generate"]["participants"] == 1_000 and size["generate"]["tips"] == 10_000
    assert isinstance(size["checkpoint_s"], float)  # the load was checkpointed before the payday
    # The machine's own figures, to read runs of different machines side by side.
    assert results["machine"]["cpu"] and results["machine"]["cores"] >= 1
    assert set(results["probes"]) == {"cpu_ms", "roundtrip_ms", "commit_ms"}
    assert all(v > 0 for v in results["probes"].values())
    # The targets: a 1k run with no latency figure measures none of them.
    assert len(results["targets"]) == 5 and all(v["met"] is None for v in results["targets"])
    # Two paydays, each on the 1k loaded afresh: the figures are the median run's (the lower
    # of two), and both totals are kept.
    runs = payday["runs_seconds"]
    assert len(runs) == 2 and all(isinstance(x, float) and x > 0 for x in runs)
    # The machine's speed just before each of them.
    probes = payday["runs_cpu_probe_ms"]
    assert len(probes) == 2 and all(isinstance(x, float) and x > 0 for x in probes)
    assert "cpu_probe_ms" not in payday  # the median run's own figure is in the list, not beside it
    assert "(the CPU probe just before each payday: " in bench_run.report(results)
    assert payday["seconds"] == min(runs)
    assert size["ratio"] == baseline_seconds(size) / min(runs)
    baseline = size["baseline"]
    assert baseline["finished"] and baseline["same_result"]
    assert baseline["check_violations"] == 0
    # Nothing left behind.
    with psycopg.connect(pg_server.dsn("postgres"), autocommit=True) as conn:
        left = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", (prefix + "%",)).fetchall()
    assert left == []


def test_history_pays_one_community_again_and_times_both_checks(pg_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from bench import history

    out = tmp_path / "history.json"
    prefix = f"bench_smoke_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    rc = history.main(["--size", "1k", "--paydays", "3", "--dsn", pg_server.dsn("postgres"), "--prefix", prefix,
                       "--json", str(out)])
    figures = json.loads(out.read_text())
    rows = figures["rows"]
    assert rc == 0 and [r["paydays"] for r in rows] == [1, 2, 3]
    assert all(r["violations"] == 0 for r in rows)
    assert rows[0]["transfers"] < rows[1]["transfers"] < rows[2]["transfers"]  # the same tips paid again
    assert all(r["marked_balances"] > 0 and r["mark_s"] is not None for r in rows)  # every finish marked
    assert rows[0]["finish_s"] is None and all(r["finish_s"] > 0 for r in rows[1:])
    assert all(r["check_s"] > 0 and r["check_recent_s"] > 0 for r in rows)
    with psycopg.connect(pg_server.dsn("postgres"), autocommit=True) as conn:
        left = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", (prefix + "%",)).fetchall()
    assert left == []
