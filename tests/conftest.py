"""Test databases: one migrated template per session, a fresh copy per test.

The server is this machine's PostgreSQL (PGHOST/PGPORT/PGUSER/PGPASSWORD, default
127.0.0.1:5432 as postgres) when reachable; otherwise a throwaway cluster
(``payday.cluster``) when server binaries are installed. PAYDAY_TEST_CLUSTER=1 forces
the throwaway cluster. DATABASE_URL is never used by the tests.

Fixtures:
    dsn        conninfo of a fresh copy of the migrated template (for more connections, the CLI)
    db         psycopg connection to it (autocommit, tuple rows)
    tap        pgTAP-style helpers bound to ``db`` (see tests/tap.py)
    make_db    session-scoped context-manager factory of fresh copies (for hypothesis tests)
    empty_dsn  conninfo of an empty, unmigrated database
    pg_server  the server (host, port, user, password)
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass

import psycopg
import pytest
from psycopg.conninfo import make_conninfo
from pytest_postgresql.janitor import DatabaseJanitor

from payday import migrate
from payday.cluster import Cluster
from payday.db import server_reachable
from tap import Tap


@dataclass(frozen=True)
class Server:
    host: str
    port: int
    user: str
    password: str | None = None

    def dsn(self, dbname: str) -> str:
        extra = {"password": self.password} if self.password else {}
        return make_conninfo(host=self.host, port=self.port, user=self.user, dbname=dbname, **extra)

    def janitor(self, dbname: str, template: str | None = None, as_template: bool = False) -> DatabaseJanitor:
        return DatabaseJanitor(user=self.user, host=self.host, port=self.port, password=self.password,
                               dbname=dbname, template_dbname=template, as_template=as_template)

    @contextmanager
    def database(self, prefix: str, template: str | None = None, as_template: bool = False) -> Iterator[str]:
        """A new database (a copy of ``template`` if given), dropped afterwards; yields its conninfo."""
        name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        janitor = self.janitor(name, template, as_template)
        janitor.init()
        try:
            yield self.dsn(name)
        finally:
            janitor.drop()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Server]:
    env = os.environ
    local = Server(env.get("PGHOST", "127.0.0.1"), int(env.get("PGPORT", "5432")),
                   env.get("PGUSER", "postgres"), env.get("PGPASSWORD"))
    if env.get("PAYDAY_TEST_CLUSTER") != "1" and server_reachable(local.dsn("postgres")):
        yield local
        return
    with Cluster() as cluster:  # raises ClusterError saying what to install when it cannot
        yield Server(cluster.host, cluster.port, cluster.user)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def drop_stale_databases(server: Server) -> None:
    """Drop test databases left by killed sessions (their pid is gone); local servers only."""
    if server.host not in ("127.0.0.1", "localhost", "::1") and not server.host.startswith("/"):
        return
    with psycopg.connect(server.dsn("postgres"), autocommit=True) as conn:
        names = [r[0] for r in conn.execute(
            "SELECT datname FROM pg_database WHERE datname ~ '^payday_(tpl|t|empty)_[0-9]+_[0-9a-f]{8}$'")]
    for name in names:
        if not _pid_alive(int(name.split("_")[-2])):
            server.janitor(name, as_template=name.startswith("payday_tpl_")).drop()


@pytest.fixture(scope="session")
def template_db(pg_server: Server) -> Iterator[str]:
    """Name of the session's migrated template database."""
    drop_stale_databases(pg_server)
    with pg_server.database("payday_tpl", as_template=True) as dsn:
        migrate.upgrade(dsn)
        yield psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]  # type: ignore[misc]


@pytest.fixture(scope="session")
def make_db(pg_server: Server, template_db: str) -> Callable[[], AbstractContextManager[str]]:
    """``with make_db() as dsn:`` gives a fresh copy of the migrated template."""
    return lambda: pg_server.database("payday_t", template=template_db)


@pytest.fixture
def dsn(make_db: Callable[[], AbstractContextManager[str]]) -> Iterator[str]:
    with make_db() as conninfo:
        yield conninfo


@pytest.fixture
def db(dsn: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(dsn, autocommit=True, application_name="payday-tests") as conn:
        yield conn


@pytest.fixture
def tap(db: psycopg.Connection) -> Tap:
    return Tap(db)


@pytest.fixture
def empty_dsn(pg_server: Server) -> Iterator[str]:
    with pg_server.database("payday_empty") as conninfo:
        yield conninfo
