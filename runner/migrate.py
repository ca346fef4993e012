"""Programmatic Alembic: upgrade, downgrade and inspect the payday schema.

Uses the migrations shipped in the package (``payday.migrations``) and passes a psycopg
connection to ``env.py`` through ``config.attributes['connection']``.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from payday import migrations
from payday.db import connect

MIGRATIONS_DIR = Path(migrations.__file__).resolve().parent


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    return config


def _run(dsn: str, action: str, revision: str) -> None:
    config = alembic_config()
    with connect(dsn, application_name="payday-migrate") as conn:
        config.attributes["connection"] = conn
        getattr(command, action)(config, revision)
        conn.commit()


def upgrade(dsn: str = "", revision: str = "head") -> None:
    """Upgrade the database to ``revision`` (default: the latest). A no-op when already there."""
    _run(dsn, "upgrade", revision)


def downgrade(dsn: str = "", revision: str = "base") -> None:
    """Downgrade the database to ``revision``; ``base`` drops the payday schema entirely."""
    _run(dsn, "downgrade", revision)


def current(dsn: str = "") -> str | None:
    """The database's current revision, or None when it has never been migrated."""
    with connect(dsn, autocommit=True, application_name="payday-migrate") as conn:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('alembic_version') IS NOT NULL")
            row = cur.fetchone()
            if not row or not row[0]:
                return None
            cur.execute("SELECT version_num FROM alembic_version")
            versions = [r[0] for r in cur.fetchall()]
    return versions[0] if versions else None


def head() -> str | None:
    """The latest revision shipped with this package."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()

