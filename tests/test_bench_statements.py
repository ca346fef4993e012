"""`bench.run --statements N`: the statements a payday spent its time in (bench/statements.py)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import psycopg
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/ lives beside the package

from payday import cluster  # noqa: E402

from bench import run as bench_run  # noqa: E402
from bench import statements  # noqa: E402


def test_report_lists_each_paydays_statements() -> None:
    payday = {"status": "finished", "check_violations": 0, "phases": {}, "rows": {}, "seconds": 1.5,
              "maxrss_mb": 60.0,
              "statements": [{"query": "SELECT * FROM payday.pay_tips()", "calls": 1, "ms": 1234.5, "toplevel": True},
                             {"query": "WITH d AS MATERIALIZED (SELECT 1)", "calls": 3, "ms": 99.0, "toplevel": False}]}
    text = bench_run.report({"sizes": [{"size": "1k", "generate": {"participants": 1000, "tips": 10000, "seconds": {}},
                                        "payday": payday}]})
    assert "the 2 statements that took longest" in text
    assert "     1,234.5 ms        1x   SELECT * FROM payday.pay_tips()" in text
    assert "        99.0 ms        3x > WITH d AS MATERIALIZED (SELECT 1)" in text


def test_statements_must_not_be_negative() -> None:
    with pytest.raises(SystemExit, match="--statements must be 0"):
        bench_run.main(["--sizes", "none", "--statements", "-1"])


def test_a_server_without_the_module_says_so(pg_server) -> None:  # type: ignore[no-untyped-def]
    dsn = pg_server.dsn("postgres")
    with psycopg.connect(dsn, autocommit=True) as conn:
        preload = conn.execute("SELECT current_setting('shared_preload_libraries')").fetchone()[0]  # type: ignore[index]
    if "pg_stat_statements" in preload:
        pytest.skip("this server loads pg_stat_statements")
    why = statements.unavailable(dsn)
    assert why is not None and "shared_preload_libraries" in why and "--tuned-server" in why


@pytest.mark.skipif(os.environ.get("PAYDAY_SKIP_CLUSTER_TEST") == "1", reason="PAYDAY_SKIP_CLUSTER_TEST=1")
def test_bench_1k_profiles_the_payday_and_not_the_load(tmp_path: Path) -> None:
    """On a server started with statements.SETTINGS, each payday's slowest statements are
    kept, the functions' own statements among them; the load's COPY is not (it was cleared
    before the payday)."""
    try:
        bindir = cluster.find_bindir()
    except cluster.ClusterError as exc:
        pytest.skip(str(exc))
    out = tmp_path / "bench.json"
    with cluster.Cluster(bindir, settings=statements.SETTINGS) as c:
        rc = bench_run.main(["--sizes", "1k", "--baseline-sizes", "", "--dsn", c.dsn, "--statements", "15",
                             "--json", str(out)])
    results = json.loads(out.read_text())
    assert rc == 0
    assert results["statements"] == {"top": 15, "unavailable": None, "track": "all"}
    got = results["sizes"][0]["payday"]["statements"]
    assert len(got) == 15
    assert [s["ms"] for s in got] == sorted((s["ms"] for s in got), reverse=True)
    queries = [s["query"] for s in got]
    assert "SELECT * FROM payday.pay_tips()" in queries  # sent by the runner
    assert any(not s["toplevel"] and "MATERIALIZED" in s["query"] for s in got)  # run inside pay_tips()
    assert not any(q.upper().startswith(("COPY", "CREATE INDEX ON PAYDAY.TIPS", "VACUUM")) for q in queries)
