"""The scale targets (issue 4), read off a benchmark's results: what this run met, on this
machine, and what it did not. `python -m bench.run` prints them last and writes them to its
JSON as `targets`.

A target the run did not measure (its size was not run, no baseline at 10k, the external
calls at other figures than 10,000 charges at 100 ms) says so and is neither met nor missed
(`met` is None). The payday time targets hold when the median payday is within the limit
with `check()` empty; `every_run` tells whether each single payday was.
"""
from __future__ import annotations

from typing import Any

PAYDAY_SECONDS = {"100k": 10.0, "1m": 60.0}  # participants -> a full sandbox payday in at most
RSS_MB = ("1m", 200.0)  # the runner's peak memory at that size
RATIO = ("10k", 100.0)  # at least this many times faster than the row-by-row baseline
CALLS = (10_000, 0.1, 30.0)  # charges, seconds of latency each, seconds for all of them


def verdicts(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One dict per target: `target` (what it asks), `measured` (what this run shows, or why
    there is nothing), `met` (True, False, or None when not measured) and, for the payday
    times, `every_run`."""
    sizes = {r["size"].lower(): r for r in results.get("sizes", [])}
    out = [_payday_time(sizes.get(size), size, limit) for size, limit in PAYDAY_SECONDS.items()]
    out.append(_memory(sizes.get(RSS_MB[0])))
    out.append(_ratio(sizes.get(RATIO[0])))
    out.append(_calls(results.get("latency")))
    return out


def _sound(payday: dict[str, Any]) -> bool:
    return payday.get("status") == "finished" and not payday.get("check_violations")


def _payday_time(r: dict[str, Any] | None, size: str, limit: float) -> dict[str, Any]:
    target = f"{size} payday in <= {limit:.0f} s"
    if r is None:
        return {"target": target, "measured": f"not run (--sizes without {size})", "met": None}
    p = r["payday"]
    runs = p.get("runs_seconds") or [p["seconds"]]
    measured = f"{p['seconds']:.2f} s"
    if len(runs) > 1:
        measured += f" (single paydays {min(runs):.2f}-{max(runs):.2f} s)"
    cpu = p.get("runs_cpu_probe_ms")
    if cpu:  # the machine's speed just before them: a miss on a slow hour reads as one
        measured += f"; CPU probe {min(cpu):.0f}" + (f"-{max(cpu):.0f}" if max(cpu) != min(cpu) else "") + " ms"
    if not _sound(p):
        measured += f"; payday {p.get('status')}, check() violations: {p.get('check_violations')}"
    return {"target": target, "measured": measured, "met": _sound(p) and p["seconds"] <= limit,
            "every_run": _sound(p) and max(runs) <= limit}


def _memory(r: dict[str, Any] | None) -> dict[str, Any]:
    size, limit = RSS_MB
    target = f"runner memory at {size} <= {limit:.0f} MB"
    if r is None:
        return {"target": target, "measured": f"not run (--sizes without {size})", "met": None}
    rss = r["payday"]["maxrss_mb"]
    return {"target": target, "measured": f"{rss:.0f} MB", "met": rss <= limit}


def _ratio(r: dict[str, Any] | None) -> dict[str, Any]:
    size, floor = RATIO
    target = f"{size} at least {floor:.0f}x the row-by-row baseline"
    if r is None or not r.get("ratio"):
        why = f"--sizes without {size}" if r is None else f"--baseline-sizes without {size}"
        return {"target": target, "measured": f"not run ({why})", "met": None}
    b = r["baseline"]
    measured = (f"{r['ratio']:.0f}x ({r['payday']['seconds']:.2f} s against {b['estimated_seconds']:.1f} s"
                + (", extrapolated" if b.get("extrapolated") else "") + ")")
    same = b.get("same_result")
    if same is False:
        measured += "; the baseline ended in another state"
    return {"target": target, "measured": measured,
            "met": _sound(r["payday"]) and same is not False and r["ratio"] >= floor}


def _calls(lat: dict[str, Any] | None) -> dict[str, Any]:
    charges, latency, limit = CALLS
    target = f"{charges:,} charges at {latency * 1000:.0f} ms, one call each, in <= {limit:.0f} s"
    m = (lat or {}).get("per_call")
    if not lat or not m:
        return {"target": target, "measured": "not run (no --latency)", "met": None}
    seconds = m.get("charges_seconds")
    measured = f"{m['charges']:,} charges at {lat['latency_s'] * 1000:.0f} ms: " + (
        "-" if seconds is None else f"{seconds:.2f} s")
    if m["charges"] < charges or lat["latency_s"] < latency or seconds is None:
        return {"target": target, "measured": measured + " (not the target's figures)", "met": None}
    return {"target": target, "measured": measured, "met": not m.get("check_violations") and seconds <= limit}


def lines(found: list[dict[str, Any]]) -> list[str]:
    """The report's block: one line per target."""
    word = {True: "met", False: "NOT MET", None: "not measured"}
    out = ["\ntargets (issue 4), on this machine"]
    for v in found:
        note = ""
        if v["met"] and v.get("every_run") is False:
            note = " (not by every single payday)"
        out.append(f"  {v['target']:<52} {v['measured']:<48} {word[v['met']]}{note}")
    return out
