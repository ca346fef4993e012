"""SIGKILL `payday run` at crash points while it charges cards through the real `stripe` SDK
against localstripe, then rerun. localstripe ignores idempotency keys: a charge made
before the kill is only found again by the resumed run's lookup (the customer's charges,
matched on metadata.idempotency_key), so it must hold exactly one charge per succeeded
exchange and none that the database does not know of."""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import psycopg
import pytest

from crash_helpers import KILLED, assert_same, finish, run
from stripe_fixtures import CARDS, charges_of, localstripe_server, make_customer
from test_run_sandbox import state

POINTS = ["after_intents:1", "charge.before_call:1", "charge.before_call:5", "charge.after_call:1",
          "charge.after_call:5", "charge.after_call:9", "after_record:1"]


@pytest.fixture(scope="module")
def localstripe_base() -> Iterator[str]:
    with localstripe_server() as base:
        yield base


def world(dsn: str, base: str) -> None:
    """Card holders a1..a7 (b1, b2's cards decline on charge) tipping dan and eli; nof has no
    funding source, unr is unreviewed and sus suspicious (both with cards: never charged),
    rich needs no charge; sam is a suspicious tippee, stub an unclaimed one. No bank accounts."""
    visa, declines = CARDS.VISA, CARDS.DECLINES_ON_CHARGE
    people = [(f"a{i}", visa, False, 0) for i in range(1, 8)] + [
        ("b1", declines, False, 0), ("b2", declines, False, 2), ("nof", None, False, 1),
        ("unr", visa, None, 4), ("sus", visa, True, 0), ("rich", visa, False, 100),
        ("dan", None, False, 0), ("eli", None, False, 0), ("sam", None, True, 0),
    ]
    with psycopg.connect(dsn) as conn:
        for n, (name, card, suspicious, balance) in enumerate(people):
            conn.execute(
                "INSERT INTO payday.participants (username, claimed_time, is_suspicious, balance, stripe_customer_id) "
                "VALUES (%s, now() - make_interval(days => 40) + make_interval(secs => %s), %s, %s, %s)",
                (name, n, suspicious, balance, make_customer(base, card) if card else None),
            )
        conn.execute("INSERT INTO payday.participants (username, claimed_time, balance) VALUES ('stub', NULL, 0)")
        tips = [(p, "dan", 5 + i) for i, (p, *_rest) in enumerate(people[:12])]
        tips += [(p, "eli", 3) for p, *_rest in people[:12:2]]
        tips += [("a1", "sam", 4), ("a2", "stub", 2)]
        for tipper, tippee, amount in tips:
            conn.execute(
                "INSERT INTO payday.tips (ctime, mtime, tipper, tippee, amount) "
                "VALUES (now() - interval '9 days', now() - interval '9 days', %s, %s, %s)",
                (tipper, tippee, amount),
            )


def stripe_env(base: str) -> dict[str, str]:
    return {"STRIPE_SECRET_KEY": CARDS.TEST_KEY, "STRIPE_API_BASE": base}


def stripe_state(db: psycopg.Connection) -> dict[str, Any]:
    s = state(db)
    s["processors"] = db.execute("SELECT processor, count(*) FROM payday.exchanges GROUP BY 1").fetchall()
    return s


@pytest.fixture(scope="module")
def expected(make_db: Callable[[], AbstractContextManager[str]], localstripe_base: str) -> Iterator[dict[str, Any]]:
    with make_db() as dsn, psycopg.connect(dsn, autocommit=True) as db:
        world(dsn, localstripe_base)
        rc, err = run(dsn, sandbox=False, env=stripe_env(localstripe_base))
        assert rc == 0, err
        s = stripe_state(db)
        statuses = Counter(status for _, _, _, _, _, status, _ in s["exchanges"])
        assert statuses == {"succeeded": 7, "failed": 2}, s["exchanges"]  # a1..a7; b1, b2 declined
        yield s


def charges_at_localstripe(db: psycopg.Connection, base: str) -> dict[str, list[dict[str, Any]]]:
    """Every localstripe charge of this database's customers, by username."""
    return {
        username: charges_of(base, cus)
        for username, cus in db.execute(
            "SELECT username, stripe_customer_id FROM payday.participants WHERE stripe_customer_id IS NOT NULL"
        ).fetchall()
    }


def charged_but_pre(db: psycopg.Connection, base: str) -> int:
    pre = {k for (k,) in db.execute("SELECT idempotency_key FROM payday.exchanges WHERE status = 'pre'").fetchall()}
    return sum(
        (c.get("metadata") or {}).get("idempotency_key") in pre
        for charges in charges_at_localstripe(db, base).values() for c in charges
    )


@pytest.mark.parametrize("point", POINTS)
def test_sigkill_while_charging_through_stripe_then_rerun(
    point: str, dsn: str, db: psycopg.Connection, localstripe_base: str, expected: dict[str, Any]
) -> None:
    env = stripe_env(localstripe_base)
    world(dsn, localstripe_base)
    rc, err = run(dsn, sandbox=False, env=env, kill_at=point)
    assert rc == KILLED, f"{point} was not reached (exit {rc}): {err[-2000:]}"
    if ".after_call" in point:
        assert charged_but_pre(db, localstripe_base) > 0  # the window of SPEC section 5
    if point.startswith("after_intents"):
        assert not any(charges_at_localstripe(db, localstripe_base).values())
    finish(dsn, sandbox=False, env=env)

    assert_same(stripe_state(db), expected)
    assert db.execute("SELECT * FROM payday.check()").fetchall() == []
    exchanges = {
        u: (key, status)
        for u, key, status in db.execute("SELECT participant, idempotency_key, status FROM payday.exchanges").fetchall()
    }
    for username, charges in charges_at_localstripe(db, localstripe_base).items():
        keys = [(c.get("metadata") or {}).get("idempotency_key") for c in charges]
        if username not in exchanges:  # never charged (unreviewed, suspicious, no charge due)
            assert charges == [], username
            continue
        key, status = exchanges[username]
        assert keys == [key], (username, charges)  # one charge, for this payday's exchange
        assert (charges[0]["status"] == "succeeded") == (status == "succeeded"), (username, charges[0]["status"], status)
