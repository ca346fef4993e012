"""A throwaway PostgreSQL cluster in a temporary directory.

For tests and ``payday demo`` when no server is reachable but PostgreSQL server binaries
are installed. Listens on a free port on 127.0.0.1 and on a socket in its directory, trust
authentication, superuser ``postgres``. As root, the server runs as an unprivileged user.

    with Cluster() as cluster:
        psycopg.connect(cluster.dsn)
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

from payday.db import server_reachable

__all__ = ["Cluster", "ClusterError", "find_bindir", "server_reachable"]

MIN_VERSION = 15
INSTALL_HINT = (
    "PostgreSQL 15+ server binaries (initdb, pg_ctl) were not found. Install them, e.g. "
    "`apt-get install postgresql` (Debian/Ubuntu) or `dnf install postgresql-server`, "
    "or point PAYDAY_PG_BINDIR at the directory holding initdb and pg_ctl; "
    "or give a reachable server with --dsn / DATABASE_URL / PG* variables."
)


class ClusterError(RuntimeError):
    """The throwaway cluster cannot be created or started."""


def _version(bindir: Path) -> int:
    out = subprocess.run([str(bindir / "pg_ctl"), "--version"], capture_output=True, text=True, check=True).stdout
    match = re.search(r"(\d+)", out)
    return int(match.group(1)) if match else 0


def _candidates() -> list[Path]:
    found: list[Path] = []
    if os.environ.get("PAYDAY_PG_BINDIR"):
        found.append(Path(os.environ["PAYDAY_PG_BINDIR"]))
    if initdb := shutil.which("initdb"):
        found.append(Path(initdb).resolve().parent)
    if pg_config := shutil.which("pg_config"):
        res = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        if res.returncode == 0 and res.stdout.strip():
            found.append(Path(res.stdout.strip()))
    versioned = glob.glob("/usr/lib/postgresql/*/bin") + glob.glob("/usr/pgsql-*/bin")
    found += sorted((Path(p) for p in versioned), key=lambda p: [int(n) for n in re.findall(r"\d+", str(p))], reverse=True)
    return found


def find_bindir() -> Path:
    """The directory holding ``initdb`` and ``pg_ctl`` (version 15+), else ClusterError saying what to install."""
    too_old: list[str] = []
    for bindir in _candidates():
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            version = _version(bindir)
            if version >= MIN_VERSION:
                return bindir
            too_old.append(f"{bindir} ({version})")
    raise ClusterError(INSTALL_HINT + (f" Found only older servers: {', '.join(too_old)}." if too_old else ""))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _unprivileged_user() -> pwd.struct_passwd | None:
    """The user to run the server as when we are root (``postgres``, else ``nobody``); None otherwise."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise ClusterError("running as root and neither a 'postgres' nor a 'nobody' user exists to run the server")


class Cluster:
    """A temporary cluster; a context manager that starts it and then stops and removes it."""

    def __init__(self, bindir: Path | None = None, port: int | None = None,
                 settings: dict[str, str] | None = None) -> None:
        """With `settings`, the server is durable (fsync, synchronous_commit and full-page
        writes at their defaults) and runs with these; without, it is a throwaway for tests
        and demos, with fsync off."""
        self.settings = settings
        self.bindir = bindir or find_bindir()
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.user = "postgres"
        self.root = Path(tempfile.mkdtemp(prefix="payday-pg-"))
        self.datadir = self.root / "data"
        self.socket_dir = self.root / "sock"
        self.logfile = self.root / "postgres.log"
        self._runas = _unprivileged_user()
        self.started = False

    @property
    def dsn(self) -> str:
        return f"host={self.host} port={self.port} user={self.user} dbname=postgres"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        kwargs: dict = {}
        if self._runas is not None:
            kwargs = {"user": self._runas.pw_uid, "group": self._runas.pw_gid, "extra_groups": []}
        env = {**os.environ, "LC_ALL": "C", "HOME": str(self.root)}
        env = {k: v for k, v in env.items() if not k.startswith("PG")}
        return subprocess.run(list(args), cwd=self.root, env=env, capture_output=True, text=True, **kwargs)

    def start(self) -> Cluster:
        self.socket_dir.mkdir()
        if self._runas is not None:
            for path in (self.root, self.socket_dir):
                os.chown(path, self._runas.pw_uid, self._runas.pw_gid)
        res = self._run(str(self.bindir / "initdb"), "-D", str(self.datadir), "-U", self.user,
                        "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions")
        if res.returncode != 0:
            raise ClusterError(f"initdb failed ({res.returncode}): {res.stderr.strip() or res.stdout.strip()}")
        opts = f"-c listen_addresses={self.host} -p {self.port} -k {self.socket_dir} "
        if self.settings is None:
            opts += "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        else:
            opts += " ".join(f"-c {k}={v}" for k, v in self.settings.items())
        res = self._run(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-l", str(self.logfile),
                        "-o", opts, "-w", "-t", "60", "start")
        if res.returncode != 0:
            log = self.logfile.read_text(errors="replace")[-2000:] if self.logfile.exists() else ""
            raise ClusterError(f"pg_ctl start failed ({res.returncode}): {res.stderr.strip()}\n{log}")
        self.started = True
        return self

    def stop(self) -> None:
        """Stop the server (fast, then immediate) and remove its directory."""
        try:
            if self.started:
                pg_ctl = str(self.bindir / "pg_ctl")
                if self._run(pg_ctl, "-D", str(self.datadir), "-m", "fast", "-w", "-t", "30", "stop").returncode:
                    self._run(pg_ctl, "-D", str(self.datadir), "-m", "immediate", "-w", "stop")
                self.started = False
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Cluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
