"""bench/paired.py: two sides paid alternately on fresh copies of their templates (not a timing test)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/ lives beside the package

from bench import paired  # noqa: E402

from payday.demo import seed  # noqa: E402


def test_each_side_is_paid_in_turn_on_a_copy_and_the_template_is_left_alone(pg_server, dsn: str, tmp_path: Path,
                                                                              capsys: pytest.CaptureFixture) -> None:  # type: ignore[no-untyped-def]
    with psycopg.connect(dsn) as conn:
        seed(conn)
    template = conninfo_to_dict(dsn)["dbname"]
    out = tmp_path / "paired.json"
    side = f"{sys.executable}:{template}"
    assert paired.main(["--dsn", pg_server.dsn("postgres"), "--rounds", "2", "--concurrency", "2",
                        "--a", side, "--b", side, "--json", str(out)]) == 0
    got = json.loads(out.read_text())
    assert len(got["seconds_a"]) == len(got["seconds_b"]) == 2
    assert all(s > 0 for s in got["seconds_a"] + got["seconds_b"])
    assert got["summary"]["rounds"] == 2 and got["summary"]["median_ratio_b_over_a"] > 0
    printed = capsys.readouterr().out
    assert "round   2:" in printed and "b faster in" in printed
    with psycopg.connect(dsn) as conn:  # the copies were paid, not the template
        assert conn.execute("SELECT count(*) FROM payday.paydays").fetchone() == (0,)
    with psycopg.connect(pg_server.dsn("postgres")) as conn:
        assert conn.execute("SELECT count(*) FROM pg_database WHERE datname LIKE 'paired_%'").fetchone() == (0,)


def test_a_side_is_python_colon_template() -> None:
    assert paired.side("a", "/venv/bin/python:bench_10k") == paired.Side("a", "/venv/bin/python", "bench_10k")
    with pytest.raises(argparse.ArgumentTypeError):
        paired.side("b", "bench_10k")


def test_the_summary_pairs_the_rounds() -> None:
    s = paired.summary([1.0, 2.0, 4.0], [0.9, 2.2, 3.0])
    assert s["b_faster_rounds"] == 2 and s["median_ratio_b_over_a"] == pytest.approx(0.9)
    assert s["median_a"] == 2.0 and s["median_b"] == 2.2
