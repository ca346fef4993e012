"""`payday demo`: throwaway database, sample community, sandbox payday, report, dropped."""
from __future__ import annotations

import io
import re
import socket
import subprocess
import sys

import psycopg
import pytest

import payday.cluster
from payday.cli import main
from payday.demo import demo
from payday.run import DatabaseUnreachable


def _databases(server_dsn: str) -> set[str]:
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        return {r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'payday_demo_%'")}


def _name(out: str) -> str:
    m = re.search(r"^demo database: (payday_demo_[0-9a-f]+)", out, re.M)
    assert m, out
    return m.group(1)


def test_demo_runs_a_sandbox_payday_and_drops_its_database(pg_server) -> None:
    server = pg_server.dsn("postgres")
    res = subprocess.run([sys.executable, "-m", "payday.cli", "--dsn", server, "demo"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "sample community: 12 participants" in out
    assert "payday 1 finished" in out and "ncharges            2" in out
    assert "payday.check(): no violation" in out
    assert re.search(r"^grace\s+0\.00\s+card declined", out, re.M)
    assert _name(out) not in _databases(server)


def test_demo_keep(pg_server) -> None:
    server = pg_server.dsn("postgres")
    out = io.StringIO()
    assert demo(server, keep=True, out=out) == 0
    name = _name(out.getvalue())
    try:
        assert name in _databases(server)
        assert "kept database" in out.getvalue()
        assert main(["--dsn", psycopg.conninfo.make_conninfo(server, dbname=name), "report"]) == 0
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_demo_starts_a_throwaway_cluster_when_no_server_answers() -> None:
    try:
        payday.cluster.find_bindir()
    except payday.cluster.ClusterError:
        pytest.skip("no PostgreSQL server binaries on this machine")
    out = io.StringIO()
    assert demo(f"host=127.0.0.1 port={_free_port()} user=postgres connect_timeout=2", out=out) == 0
    assert "(throwaway cluster)" in out.getvalue() and "no violation" in out.getvalue()


def test_demo_says_what_to_install_without_server_or_binaries(monkeypatch, capsys) -> None:
    def none() -> None:
        raise payday.cluster.ClusterError(payday.cluster.INSTALL_HINT)

    monkeypatch.setattr(payday.cluster, "find_bindir", none)
    dsn = f"host=127.0.0.1 port={_free_port()} user=postgres connect_timeout=2"
    with pytest.raises(DatabaseUnreachable, match="apt-get install postgresql"):
        demo(dsn, out=io.StringIO())
    assert main(["--dsn", dsn, "demo"]) == 4
    err = capsys.readouterr().err
    assert "apt-get install postgresql" in err and "Traceback" not in err
