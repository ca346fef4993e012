"""bench/targets.py: the issue's targets read off a benchmark's results."""
from __future__ import annotations

from typing import Any

from bench import run as bench_run
from bench import targets


def size(name: str, seconds: float, runs: list[float] | None = None, *, rss: float = 70.0,
         status: str = "finished", violations: int = 0, baseline: float | None = None,
         same: bool | None = True) -> dict[str, Any]:
    r: dict[str, Any] = {"size": name, "payday": {
        "seconds": seconds, "runs_seconds": runs or [seconds], "maxrss_mb": rss,
        "status": status, "check_violations": violations}}
    if baseline is not None:
        r["baseline"] = {"estimated_seconds": baseline, "extrapolated": False, "same_result": same}
        r["ratio"] = baseline / seconds
    return r


def latency(charges: int = 10_000, latency_s: float = 0.1, seconds: float | None = 16.1) -> dict[str, Any]:
    return {"charges": charges, "latency_s": latency_s, "concurrency": 64,
            "per_call": {"charges": charges, "charges_seconds": seconds, "payday_seconds": 17.0,
                         "maxrss_mb": 60.0, "check_violations": 0}}


def by_target(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["target"]: v for v in targets.verdicts(results)}


def test_a_run_that_meets_every_target() -> None:
    found = by_target({"sizes": [size("10k", 0.5, baseline=55.0), size("100k", 4.4, [4.4, 4.5, 4.3]),
                                 size("1M", 55.0, [52.0, 55.0, 58.5], rss=74.0)],
                       "latency": latency()})
    assert [v["met"] for v in found.values()] == [True] * 5
    assert found["100k payday in <= 10 s"]["measured"] == "4.40 s (single paydays 4.30-4.50 s)"
    assert found["1m payday in <= 60 s"]["every_run"] is True
    assert found["10k at least 100x the row-by-row baseline"]["measured"] == "110x (0.50 s against 55.0 s)"
    assert found["runner memory at 1m <= 200 MB"]["measured"] == "74 MB"


def test_what_a_run_misses_is_not_met() -> None:
    found = by_target({"sizes": [size("10k", 0.55, baseline=51.7), size("100k", 14.5),
                                 size("1m", 154.0, rss=250.0)],
                       "latency": latency(seconds=31.0)})
    assert [v["met"] for v in found.values()] == [False] * 5
    assert found["10k at least 100x the row-by-row baseline"]["measured"].startswith("94x")


def test_a_median_within_the_limit_with_a_slower_single_payday() -> None:
    v = by_target({"sizes": [size("1m", 57.8, [57.8, 61.2, 55.7])]})["1m payday in <= 60 s"]
    assert v["met"] is True and v["every_run"] is False
    assert "(not by every single payday)" in "\n".join(targets.lines([v]))


def test_the_payday_times_carry_the_cpu_probe_taken_before_each_payday() -> None:
    slow = size("1M", 62.0, [61.0, 62.0, 68.0])
    slow["payday"]["runs_cpu_probe_ms"] = [143.4, 129.0, 136.2]
    found = by_target({"sizes": [slow]})
    v = found["1m payday in <= 60 s"]
    assert v["met"] is False
    assert v["measured"] == "62.00 s (single paydays 61.00-68.00 s); CPU probe 129-143 ms"
    one = size("100k", 4.5)
    one["payday"]["runs_cpu_probe_ms"] = [131.0]
    assert by_target({"sizes": [one]})["100k payday in <= 10 s"]["measured"] == "4.50 s; CPU probe 131 ms"


def test_an_unsound_payday_meets_nothing() -> None:
    found = by_target({"sizes": [size("10k", 0.1, baseline=60.0, violations=2), size("100k", 1.0, status="skipped")]})
    assert found["100k payday in <= 10 s"]["met"] is False
    assert "payday skipped" in found["100k payday in <= 10 s"]["measured"]
    assert found["10k at least 100x the row-by-row baseline"]["met"] is False  # fast, but check() failed
    other_state = by_target({"sizes": [size("10k", 0.1, baseline=60.0, same=False)]})
    v = other_state["10k at least 100x the row-by-row baseline"]
    assert v["met"] is False and "another state" in v["measured"]


def test_what_a_run_did_not_measure_is_neither_met_nor_missed() -> None:
    found = by_target({"sizes": [size("10k", 0.5), size("1k", 0.1, baseline=5.0)],
                       "latency": latency(charges=1_000)})
    assert [v["met"] for v in found.values()] == [None] * 5
    assert found["100k payday in <= 10 s"]["measured"] == "not run (--sizes without 100k)"
    assert found["10k at least 100x the row-by-row baseline"]["measured"] == "not run (--baseline-sizes without 10k)"
    assert "not the target's figures" in found["10,000 charges at 100 ms, one call each, in <= 30 s"]["measured"]
    assert by_target({})["10,000 charges at 100 ms, one call each, in <= 30 s"]["measured"] == "not run (no --latency)"


def test_the_report_ends_with_the_targets_when_one_was_measured() -> None:
    machine = {"machine": {"cpu": "Some CPU", "cores": 2, "memory_mb": 2048}}
    assert "targets (issue 4)" not in bench_run.report({**machine, "sizes": []})
    text = bench_run.report({**machine, "sizes": [], "latency": latency(seconds=20.4)})
    block = text[text.index("targets (issue 4), on this machine"):].splitlines()
    assert len(block) == 6
    assert block[5].split()[-1] == "met" and "20.40 s" in block[5]
    assert block[1].endswith("not measured")
