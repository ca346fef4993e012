"""Alembic environment for payday: raw SQL, one transaction, one migrator at a time.

The connection comes from, in order: ``config.attributes['connection']`` (a psycopg or
SQLAlchemy connection, as passed by ``payday.migrate``), ``-x dsn=...``, ``DATABASE_URL``,
else the libpq ``PG*`` environment variables. Any libpq DSN or URL works.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from logging.config import fileConfig

import psycopg
import sqlalchemy as sa
from alembic import context
from sqlalchemy.pool import NullPool, StaticPool

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

# Serialises concurrent migrators (pg_advisory_xact_lock key: hashtext('payday.migrate')).
LOCK_SQL = "SELECT pg_advisory_xact_lock(hashtext('payday.migrate'))"


def libpq_dsn() -> str:
    """``-x dsn=``, else DATABASE_URL, else '' (libpq PG* variables)."""
    dsn = context.get_x_argument(as_dictionary=True).get("dsn") or os.environ.get("DATABASE_URL", "")
    # Accept SQLAlchemy-style URLs too: postgresql+psycopg://... -> postgresql://...
    if dsn.startswith(("postgresql+", "postgres+")):
        dsn = "postgresql" + dsn[dsn.index("://"):]
    return dsn


@contextmanager
def sa_connection() -> Iterator[sa.Connection]:
    given = config.attributes.get("connection")
    if isinstance(given, sa.Connection):
        yield given
        return
    if isinstance(given, psycopg.Connection):
        # Wrap the caller's connection; StaticPool never closes it. Alembic needs a transaction.
        if given.autocommit:
            given.autocommit = False
        engine = sa.create_engine("postgresql+psycopg://", creator=lambda: given, poolclass=StaticPool)
    else:
        dsn = libpq_dsn()
        engine = sa.create_engine("postgresql+psycopg://", creator=lambda: psycopg.connect(dsn), poolclass=NullPool)
    with engine.connect() as connection:
        yield connection


def run_migrations_online() -> None:
    with sa_connection() as connection:
        context.configure(connection=connection, target_metadata=None, transactional_ddl=True)
        with context.begin_transaction():
            connection.exec_driver_sql(LOCK_SQL)
            context.run_migrations()
        if connection.in_transaction():  # a caller-provided connection with a transaction open
            connection.commit()


def run_migrations_offline() -> None:
    context.configure(url="postgresql+psycopg://", literal_binds=True, transactional_ddl=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
