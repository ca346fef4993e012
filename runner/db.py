"""Database connections."""

from __future__ import annotations

import psycopg


def connect(dsn: str = "", autocommit: bool = False, application_name: str = "payday") -> psycopg.Connection:
    """A psycopg 3 connection (tuple rows). ``dsn`` is any libpq DSN or URL; "" uses the PG* variables."""
    return psycopg.connect(dsn, autocommit=autocommit, application_name=application_name)


def server_reachable(dsn: str = "", timeout: int = 3) -> bool:
    """True when a connection with this DSN can be opened (and is closed at once)."""
    try:
        with psycopg.connect(dsn, connect_timeout=timeout, application_name="payday-probe"):
            return True
    except psycopg.Error:
        return False
