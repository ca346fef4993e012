"""Alembic migrations of the payday schema (raw SQL from payday.sql)."""
