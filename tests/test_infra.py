"""Configuration, connections and the throwaway cluster."""

from __future__ import annotations

import os

import psycopg
import pytest

from payday import cluster, db
from payday.config import redact, resolve_dsn


def test_resolve_dsn() -> None:
    assert resolve_dsn("host=a", {"DATABASE_URL": "postgresql://b"}) == "host=a"
    assert resolve_dsn(None, {"DATABASE_URL": "postgresql://b/c"}) == "postgresql://b/c"
    assert resolve_dsn("", {}) == ""
    assert resolve_dsn(None, {"DATABASE_URL": "postgresql+psycopg://u@h/d"}) == "postgresql://u@h/d"


@pytest.mark.parametrize("dsn, shown", [
    ("postgresql://alice:s3cr3t@db:5432/pay", "postgresql://alice:***@db:5432/pay"),
    ("postgresql://alice@db/pay?password=s3cr3t&sslmode=require", "postgresql://alice@db/pay?password=***&sslmode=require"),
    ("host=db password=s3cr3t user=alice", "host=db password=*** user=alice"),
    ("host=db password = 'it\\'s s3cr3t' user=alice", "host=db password = *** user=alice"),
    ("host=db user=alice", "host=db user=alice"),
    # Inside an error message (the runner and the CLI print those through the same function).
    ('cannot connect to "postgresql://alice:s3cr3t@db/pay": refused',
     'cannot connect to "postgresql://alice:***@db/pay": refused'),
    ("invalid dsn: host=db PASSWORD=s3cr3t port=x", "invalid dsn: host=db PASSWORD=*** port=x"),
])
def test_redact(dsn: str, shown: str) -> None:
    assert redact(dsn) == shown
    assert "s3cr3t" not in redact(dsn)


def test_connect(dsn: str) -> None:
    with db.connect(dsn) as conn:
        assert not conn.autocommit
        assert conn.execute("SHOW application_name").fetchone() == ("payday",)
    assert db.server_reachable(dsn)
    assert not db.server_reachable("host=127.0.0.1 port=1 connect_timeout=2")


@pytest.mark.skipif(os.environ.get("PAYDAY_SKIP_CLUSTER_TEST") == "1", reason="PAYDAY_SKIP_CLUSTER_TEST=1")
def test_throwaway_cluster() -> None:
    try:
        bindir = cluster.find_bindir()
    except cluster.ClusterError as exc:
        pytest.skip(str(exc))
    with cluster.Cluster(bindir) as c:
        root = c.root
        assert cluster.server_reachable(c.dsn)
        with psycopg.connect(c.dsn) as conn:
            assert conn.execute("SELECT current_setting('server_version_num')::int >= 150000").fetchone() == (True,)
        if os.geteuid() == 0:
            assert os.stat(c.datadir).st_uid != 0, "the server must not run as root"
    assert not root.exists()
    assert not cluster.server_reachable(c.dsn)


@pytest.mark.skipif(os.environ.get("PAYDAY_SKIP_CLUSTER_TEST") == "1", reason="PAYDAY_SKIP_CLUSTER_TEST=1")
def test_a_cluster_with_settings_is_durable_and_uses_them() -> None:
    """The benchmark's --tuned-server: its settings apply, and durability is not traded away."""
    try:
        bindir = cluster.find_bindir()
    except cluster.ClusterError as exc:
        pytest.skip(str(exc))
    with cluster.Cluster(bindir, settings={"shared_buffers": "48MB", "max_wal_size": "2GB"}) as c:
        with psycopg.connect(c.dsn) as conn:
            shown = {name: conn.execute(f"SHOW {name}").fetchone()[0]  # type: ignore[index]
                     for name in ("shared_buffers", "max_wal_size", "fsync", "synchronous_commit", "full_page_writes")}
    assert shown == {"shared_buffers": "48MB", "max_wal_size": "2GB", "fsync": "on", "synchronous_commit": "on",
                     "full_page_writes": "on"}


def test_cluster_without_binaries_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cluster, "_candidates", lambda: [])
    with pytest.raises(cluster.ClusterError, match="apt-get install postgresql"):
        cluster.find_bindir()
