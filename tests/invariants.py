"""Shared by the SQL and hardening test packages (imported into their conftest.py): every
test that uses ``db`` ends with ``payday.check()`` returning no row, unless it is marked
``corrupt`` (it damages data on purpose to see the violation detected)."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "corrupt: the test damages data on purpose; skip the final payday.check()")


@pytest.fixture(autouse=True)
def _invariants_hold_afterwards(request: pytest.FixtureRequest) -> Iterator[None]:
    if "db" not in request.fixturenames or request.node.get_closest_marker("corrupt"):
        yield
        return
    db: psycopg.Connection = request.getfixturevalue("db")
    yield
    db.execute("RESET ROLE")  # a test may end inside SET ROLE
    found = db.execute("SELECT * FROM payday.check()").fetchall()
    assert found == [], f"payday.check() after the test: {found}"
