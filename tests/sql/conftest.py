"""Fixtures of the SQL tests.

Every test that uses ``db`` ends with ``payday.check()`` returning no row, unless it is
marked ``corrupt`` (it damages data on purpose to see the violation detected):
tests/invariants.py.
"""

from __future__ import annotations

import psycopg
import pytest
from invariants import _invariants_hold_afterwards, pytest_configure  # noqa: F401  (registered here)

from .world import World


@pytest.fixture
def world(db: psycopg.Connection) -> World:
    return World(db)
