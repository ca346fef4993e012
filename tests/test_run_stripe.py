"""`payday run` with each participant's own processor: the real stripe SDK against localstripe.

localstripe ignores idempotency keys, so a charge made before a crash is only found again
by the runner's reconciliation (lookup by metadata), never by the key.
"""
from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from payday.processors.base import Attempt
from payday.processors.stripe import StripeProcessor
from payday.run import run_payday
from test_run_sandbox import LOG

HERE = Path(__file__).parent / "processors"


def _helpers() -> Any:
    """tests/processors/conftest.py's localstripe launcher and card numbers (loaded by path)."""
    sys.path.insert(0, str(HERE))
    spec = importlib.util.spec_from_file_location("payday_tests_localstripe", HERE / "conftest.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


H = _helpers()
import localstripe_cards as CARDS  # noqa: E402  (tests/processors, put on sys.path above)


@pytest.fixture(scope="module")
def localstripe_base() -> Iterator[str]:
    with H.localstripe_server() as base:
        yield base


@pytest.fixture
def stripe_env(localstripe_base: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name in ("BALANCED_API_KEY", "BALANCED_API_BASE"):
        monkeypatch.delenv(name, raising=False)
    env = {"STRIPE_SECRET_KEY": CARDS.TEST_KEY, "STRIPE_API_BASE": localstripe_base}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


@pytest.fixture
def customer(localstripe_base: str) -> Callable[[str], str]:
    import stripe

    client = stripe.StripeClient(CARDS.TEST_KEY, base_addresses={"api": localstripe_base}, max_network_retries=0)

    def make(number: str) -> str:
        tok = client.v1.tokens.create(params={"card": {
            "number": number, "exp_month": "12", "exp_year": "2030", "cvc": "123"}})
        return str(client.v1.customers.create(params={"source": tok.id}).id)

    return make


def world(dsn: str, customer: Callable[[str], str]) -> None:
    """Three card holders (one card declines on charge) tipping two people without bank accounts."""
    people = [
        ("ann", 40, False, customer(CARDS.VISA)),
        ("ben", 39, False, customer(CARDS.DECLINES_ON_CHARGE)),
        ("cat", 38, False, customer(CARDS.VISA)),
        ("dan", 37, False, None),
        ("eli", 36, False, None),
    ]
    with psycopg.connect(dsn) as conn:
        for name, days, suspicious, cus in people:
            conn.execute(
                "INSERT INTO payday.participants (username, claimed_time, is_suspicious, balance, "
                "balanced_account_uri, stripe_customer_id) VALUES (%s, now() - make_interval(days => %s), %s, 0, NULL, %s)",
                (name, days, suspicious, cus),
            )
        for tipper, tippee, amount in [("ann", "dan", "12.00"), ("ben", "dan", "5.00"), ("cat", "eli", "3.00"),
                                       ("cat", "dan", "1.00")]:
            conn.execute(
                "INSERT INTO payday.tips (ctime, mtime, tipper, tippee, amount) "
                "VALUES (now() - interval '9 days', now() - interval '9 days', %s, %s, %s)",
                (tipper, tippee, amount),
            )


def charges_at_stripe(env: dict[str, str], customer_id: str) -> list[dict[str, Any]]:
    import stripe

    client = stripe.StripeClient(env["STRIPE_SECRET_KEY"], base_addresses={"api": env["STRIPE_API_BASE"]})
    return [c.to_dict() for c in client.v1.charges.list(params={"customer": customer_id, "limit": 100}).data]


def test_a_payday_through_stripe(dsn: str, db: psycopg.Connection, stripe_env: dict[str, str],
                                 customer: Callable[[str], str]) -> None:
    world(dsn, customer)
    res = run_payday(dsn, log=LOG)
    assert res.status == "finished"
    rows = {u: (s, ref, p, e) for u, s, ref, p, e in db.execute(
        "SELECT participant, status, processor_ref, processor, error FROM payday.exchanges").fetchall()}
    assert set(rows) == {"ann", "ben", "cat"}
    assert all(p == "stripe" for _, _, p, _ in rows.values())
    assert rows["ann"][0] == "succeeded" and rows["ann"][1].startswith("ch_")
    assert rows["cat"][0] == "succeeded"
    assert rows["ben"][0] == "failed" and rows["ben"][3]
    c = db.execute("SELECT ncharges, ncc_failing, charge_volume, ntransfers, transfer_volume FROM payday.paydays").fetchone()
    assert c is not None and c[:2] == (2, 1)
    (cus,) = db.execute("SELECT stripe_customer_id FROM payday.participants WHERE username = 'ann'").fetchone()  # type: ignore[misc]
    [charge] = charges_at_stripe(stripe_env, cus)
    assert charge["amount"] == 1278 and charge["metadata"]["username"] == "ann"  # (12.00 + 0.30) * 1.039 up
    assert db.execute("SELECT * FROM payday.check()").fetchall() == []


def test_a_charge_made_before_a_crash_is_found_not_repeated(dsn: str, db: psycopg.Connection,
                                                             stripe_env: dict[str, str],
                                                             customer: Callable[[str], str]) -> None:
    world(dsn, customer)
    db.execute("SELECT payday.start()")
    assert db.execute("SELECT count(*) FROM payday.charge_intents()").fetchone() == (3,)
    with db.cursor(row_factory=psycopg.rows.dict_row) as cur:
        ann = cur.execute("SELECT * FROM payday.exchanges WHERE participant = 'ann'").fetchone()
    assert ann is not None
    # The runner charged ann and died before recording it.
    assert StripeProcessor.from_env(stripe_env).charge(Attempt.from_exchange(ann)).succeeded
    res = run_payday(dsn, log=LOG)
    assert res.status == "finished"
    charges = charges_at_stripe(stripe_env, ann["route"])
    assert len(charges) == 1, charges  # one card charge for one succeeded exchange
    ref = db.execute("SELECT status, processor_ref FROM payday.exchanges WHERE id = %s", (ann["id"],)).fetchone()
    assert ref == ("succeeded", charges[0]["id"])
    assert db.execute("SELECT * FROM payday.check()").fetchall() == []
