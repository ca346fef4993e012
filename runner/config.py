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


# Passwords in a DSN (key=value or URL form, with its query string) wherever they appear in
# a text: a DSN itself, or an error message quoting one.
_KV_PASSWORD = re.compile(r"(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&]+)")
_URL_PASSWORD = re.compile(r"(?i)(\w+://[^:/@\s]*:)[^@\s]*@")


def redact(text: str) -> str:
    """The text with every password of a DSN in it replaced by ``***``, safe to log or print."""
    return _URL_PASSWORD.sub(r"\1***@", _KV_PASSWORD.sub(r"\1***", text))
