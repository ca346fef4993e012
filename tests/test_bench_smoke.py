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
    # Two paydays, each on the 1k loaded afresh: the figures are the median run's (the lower
    # of two), and both totals are kept.
    runs = payday["runs_seconds"]
    assert len(runs) == 2 and all(isinstance(x, float) and x > 0 for x in runs)
    assert payday["seconds"] == min(runs)
    assert size["ratio"] == baseline_seconds(size) / min(runs)
    baseline = size["baseline"]
    assert baseline["finished"] and baseline["same_result"]
    assert baseline["check_violations"] == 0
    # Nothing left behind.
    with psycopg.connect(pg_server.dsn("postgres"), autocommit=True) as conn:
        left = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", (prefix + "%",)).fetchall()
    assert left == []
