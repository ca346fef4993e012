"""Configuration: the database DSN (libpq conventions) and secrets from the environment."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping


def resolve_dsn(dsn: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """The DSN to use: explicit ``--dsn``, else ``DATABASE_URL``, else "" (libpq ``PG*`` variables).

    SQLAlchemy-style URLs (``postgresql+psycopg://``) are turned into libpq ones.
    """
    env = os.environ if env is None else env
    chosen = dsn if dsn else env.get("DATABASE_URL", "")
    return re.sub(r"^(postgres(?:ql)?)\+\w+://", "postgresql://", chosen)


_URL_PASSWORD = re.compile(r"^(\w+://[^:/@?#]*):[^@/?#]*@")
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&#]*", re.IGNORECASE)
_KV_PASSWORD = re.compile(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def redact(dsn: str) -> str:
    """The DSN with any password replaced by ``***``, safe to log. "" reads as the PG* variables."""
    if not dsn:
        return "(libpq PG* environment variables)"
    if "://" in dsn:
        return _QUERY_PASSWORD.sub(r"\1***", _URL_PASSWORD.sub(r"\1:***@", dsn))
    return _KV_PASSWORD.sub(r"\1***", dsn)
