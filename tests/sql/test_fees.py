"""SPEC §3: fee maths, exact to the cent, and the minimum charge."""

from __future__ import annotations

from decimal import Decimal

import pytest

from .world import D, Driver, World, rows, start, upcharge


@pytest.mark.parametrize("amount, charge, fee", [
    ("9.32", "10.00", "0.68"),      # the smallest card charge
    ("0.01", "0.33", "0.32"),       # 0.31 * 1.039 = 0.32209
    ("0.70", "1.04", "0.34"),       # 1.00 * 1.039 = 1.039: up, where half-up would go down
    ("1.00", "1.36", "0.36"),       # 1.30 * 1.039 = 1.3507
    ("9.33", "10.01", "0.68"),      # 9.63 * 1.039 = 10.00557
    ("10.00", "10.71", "0.71"),     # 10.30 * 1.039 = 10.7017
    ("25.00", "26.29", "1.29"),     # 25.30 * 1.039 = 26.2867
    ("99.70", "103.90", "4.20"),    # 100.00 * 1.039 = 103.9 exactly: nothing to round
    ("100.00", "104.22", "4.22"),   # 100.30 * 1.039 = 104.2117
])
def test_upcharge_known_values(tap, amount: str, charge: str, fee: str) -> None:
    assert upcharge(D(amount)) == (D(charge), D(fee)), "the table disagrees with the Decimal reference"
    tap.results_eq(f"SELECT * FROM payday.upcharge({amount})", [(D(charge), D(fee))])
    tap.results_eq(f"SELECT * FROM payday.upcharge({amount}::numeric(35,2))", [(D(charge), D(fee))])


def test_upcharge_every_cent_up_to_50_dollars_and_beyond(db) -> None:
    """Every amount from 0.01 to 50.00 and a spread of large ones, against Decimal ROUND_UP."""
    amounts = [Decimal(c) / 100 for c in range(1, 5001)]
    amounts += [D(x) for x in ("99.99", "123.45", "999.99", "1000.00", "12345.67", "999999.99",
                               "31415926.53", "99999999999.99", "123456789012345678901234.56")]
    got = rows(db, "SELECT a, u.charge_amount, u.fee FROM unnest(%s::numeric[]) a,"
                   " LATERAL payday.upcharge(a) u ORDER BY a", (amounts,))
    assert len(got) == len(amounts)
    for r in got:
        charge, fee = upcharge(r["a"])
        assert (r["charge_amount"], r["fee"]) == (charge, fee), r["a"]
        assert r["charge_amount"] - r["fee"] == r["a"]


def test_upcharge_returns_one_row_of_cents(tap) -> None:
    tap.is_("SELECT count(*) FROM payday.upcharge(5)", 1)
    tap.is_("SELECT scale(charge_amount) = 2 AND scale(fee) = 2 FROM payday.upcharge(5)", True)
    tap.results_eq("SELECT * FROM payday.upcharge(5.1)", [(D("5.62"), D("0.52"))], "5.40 * 1.039 = 5.6106")


def test_upcharge_applies_no_minimum(tap) -> None:
    tap.results_eq("SELECT * FROM payday.upcharge(1.00)", [(D("1.36"), D("0.36"))])


@pytest.mark.parametrize("amount, credit, fee", [
    ("10.00", "9.70", "0.30"),
    ("10.01", "9.71", "0.30"),
    ("123.45", "123.15", "0.30"),
    ("0.31", "0.01", "0.30"),
    ("99999999999999999999999999999999.99", "99999999999999999999999999999999.69", "0.30"),
])
def test_skim_credit(tap, amount: str, credit: str, fee: str) -> None:
    tap.results_eq(f"SELECT * FROM payday.skim_credit({amount})", [(D(credit), D(fee))])


@pytest.mark.parametrize("amount", ["0.30", "0.29", "0.01"])
def test_skim_credit_refuses_amounts_the_fee_eats(tap, amount: str) -> None:
    tap.throws_ok(f"SELECT * FROM payday.skim_credit({amount})", "22023")


@pytest.mark.parametrize("short, amount", [
    ("0.01", "9.32"),    # raised to the minimum
    ("5.00", "9.32"),
    ("9.31", "9.32"),
    ("9.32", "9.32"),    # exactly the minimum
    ("9.33", "9.33"),    # above: charged as is
    ("42.17", "42.17"),
])
def test_charges_due_applies_the_minimum_charge(db, world: World, short: str, amount: str) -> None:
    world.participant("alice", balance="3.00", balanced="/v1/accounts/alice")
    world.participant("bob")
    world.tip("alice", "bob", D(short) + D("3.00"))
    start(db)
    due = rows(db, "SELECT * FROM payday.charges_due()")
    charge, fee = upcharge(D(amount))
    assert due == [dict(username="alice", short=D(short), amount=D(amount), charge_amount=charge, fee=fee,
                        processor="balanced", route="/v1/accounts/alice")]
    Driver(db).run()
    # The balance receives the nominal (rounded-up) amount, not the short amount.
    assert rows(db, "SELECT amount, fee, status FROM payday.exchanges") == [
        dict(amount=D(amount), fee=fee, status="succeeded")]
    paid = D(short) + D("3.00")
    assert rows(db, "SELECT username, balance FROM payday.participants ORDER BY 1") == [
        dict(username="alice", balance=D("3.00") + D(amount) - paid),
        dict(username="bob", balance=paid),
    ]
