"""The interface's value types, money conversion, and choosing a processor per exchange."""
from __future__ import annotations

from decimal import Decimal

import pytest

from payday.processors import (Attempt, Outcome, Processor, ProcessorError, ProcessorSet, cents,
                               make_processor)
from payday.processors.balanced import BalancedProcessor
from payday.processors.base import one_line
from payday.processors.sandbox import SandboxProcessor
from payday.processors.stripe import StripeProcessor


def test_cents_is_exact() -> None:
    assert cents(Decimal("10.68")) == 1068
    assert cents(Decimal("0.01")) == 1
    assert cents(Decimal("1234567890123.45")) == 123456789012345
    for bad in (Decimal("1.005"), Decimal("NaN"), Decimal("Infinity")):
        with pytest.raises(ValueError):
            cents(bad)
    with pytest.raises(ValueError):
        cents(10.68)  # type: ignore[arg-type]  # floats are refused


def test_attempt_from_a_charge_exchange_pays_amount_plus_fee() -> None:
    row = {"id": 12, "idempotency_key": "payday-3-exchange-12", "payday_id": 3, "participant": "alice",
           "route": "cus_1", "amount": Decimal("9.32"), "fee": Decimal("0.68")}
    assert Attempt.from_exchange(row) == Attempt(12, "payday-3-exchange-12", 3, "alice", "cus_1", "charge", 1000)


def test_attempt_from_a_credit_exchange_sends_what_the_bank_gets() -> None:
    row = {"id": 13, "idempotency_key": "payday-3-exchange-13", "payday_id": 3, "participant": "bob",
           "route": "/v1/accounts/B", "amount": Decimal("-24.70"), "fee": Decimal("0.30")}
    a = Attempt.from_exchange(row)
    assert (a.kind, a.cents) == ("credit", 2470)
    assert a.metadata() == {"idempotency_key": "payday-3-exchange-13", "exchange_id": "13",
                            "payday_id": "3", "username": "bob"}


@pytest.mark.parametrize("kwargs", [
    {"kind": "refund"}, {"cents": 0}, {"cents": -5}, {"cents": 10.0}, {"cents": True}, {"route": ""},
])
def test_attempt_validates(kwargs: dict) -> None:
    base = dict(exchange_id=1, idempotency_key="k", payday_id=1, username="u", route="r",
                kind="charge", cents=100)
    with pytest.raises(ValueError):
        Attempt(**{**base, **kwargs})  # type: ignore[arg-type]


def test_failed_outcome_needs_an_error() -> None:
    with pytest.raises(ValueError):
        Outcome(False)
    assert Outcome(False, "declined").error == "declined"


def test_one_line_redacts_and_bounds() -> None:
    assert one_line("bad\nkey sk_live_123 here", "sk_live_123") == "bad key [redacted] here"
    assert len(one_line("x" * 1000)) == 240


def test_every_processor_satisfies_the_protocol(sandbox_dsn: str) -> None:
    with SandboxProcessor(sandbox_dsn) as sandbox:
        for p in (sandbox, StripeProcessor("sk_test_x"), BalancedProcessor("ak-test-x")):
            assert isinstance(p, Processor)


def test_processor_set_builds_each_processor_once_and_lazily(sandbox_dsn: str) -> None:
    env = {"BALANCED_API_KEY": "ak-test-x"}  # no Stripe key: fine until a Stripe exchange shows up
    with ProcessorSet(dsn=sandbox_dsn, latency=0.01, env=env) as ps:
        sandbox = ps.processor_for("sandbox")
        assert sandbox is ps.processor_for("sandbox") and sandbox.name == "sandbox"
        assert isinstance(sandbox, SandboxProcessor) and sandbox.latency == 0.01
        assert ps.processor_for("balanced").name == "balanced"
        with pytest.raises(ProcessorError, match="STRIPE_SECRET_KEY is not set"):
            ps.processor_for("stripe")
        with pytest.raises(ProcessorError, match="settled by hand"):
            ps.processor_for("manual")
        with pytest.raises(ProcessorError, match="unknown processor 'paypal'"):
            ps.processor_for("paypal")


def test_make_processor_reads_keys_from_the_given_environment() -> None:
    p = make_processor("stripe", dsn="unused", env={"STRIPE_SECRET_KEY": "sk_test_secret_1",
                                                   "STRIPE_API_BASE": "http://127.0.0.1:9"})
    assert isinstance(p, StripeProcessor) and "sk_test_secret_1" not in repr(p)
    b = make_processor("balanced", dsn="unused", env={"BALANCED_API_KEY": "ak-secret-2"})
    assert isinstance(b, BalancedProcessor) and b.api_base == "https://api.balancedpayments.com"
    assert "ak-secret-2" not in repr(b)
