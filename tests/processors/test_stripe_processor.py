"""The Stripe processor: the real SDK against localstripe, and against a tiny HTTP server
for the replies localstripe cannot produce (429, 5xx, garbage, slowness)."""
from __future__ import annotations

import json
import socket
import threading
import time

import pytest
import stripe
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from localstripe_cards import DECLINES_ON_CHARGE, TEST_KEY, VISA
from payday.processors import (Attempt, Outcome, ProcessorError, RateLimited, TransientError,
                               make_processor, perform)
from payday.processors.stripe import StripeProcessor

_n = iter(range(1, 1_000_000))


def attempt(customer: str, cents: int = 1068, n: int | None = None) -> Attempt:
    n = next(_n) if n is None else n
    return Attempt(n, f"payday-7-exchange-{n}", 7, f"user{n}", customer, "charge", cents)


def charges_of(localstripe: str, customer: str) -> list[dict]:
    client = stripe.StripeClient(TEST_KEY, base_addresses={"api": localstripe})
    return [c.to_dict() for c in client.v1.charges.list(params={"customer": customer}).auto_paging_iter()]


@pytest.fixture
def processor(stripe_env: dict[str, str]) -> StripeProcessor:
    return make_processor("stripe", dsn="unused")  # type: ignore[return-value]


def test_charge_succeeds_in_cents_with_key_in_metadata(processor: StripeProcessor, make_customer,
                                                       localstripe: str) -> None:
    cus = make_customer(VISA)
    a = attempt(cus, cents=1068)
    out = processor.charge(a)
    assert out.succeeded and out.error is None and out.processor_ref.startswith("ch_")
    [ch] = charges_of(localstripe, cus)
    assert ch["id"] == out.processor_ref
    assert (ch["amount"], ch["currency"], ch["description"]) == (1068, "usd", a.username)
    assert ch["metadata"] == {"idempotency_key": a.idempotency_key, "exchange_id": str(a.exchange_id),
                              "payday_id": "7", "username": a.username}


def test_decline_is_a_failed_outcome(processor: StripeProcessor, make_customer) -> None:
    out = processor.charge(attempt(make_customer(DECLINES_ON_CHARGE)))
    assert not out.succeeded
    assert out.error == "card declined: Your card was declined. (card_declined)"
    assert out.processor_ref and out.processor_ref.startswith("ch_")


def test_invalid_customer_is_a_failed_outcome(processor: StripeProcessor) -> None:
    out = processor.charge(attempt("cus_doesnotexist"))
    assert not out.succeeded and out.processor_ref is None
    assert out.error and out.error.startswith("invalid customer cus_doesnotexist:")


def test_lookup_finds_earlier_charges_by_metadata(processor: StripeProcessor, make_customer) -> None:
    cus = make_customer(VISA)
    first, second = attempt(cus), attempt(cus)
    done = processor.charge(first)
    processor.charge(second)
    assert processor.lookup(first) == done
    assert processor.lookup(attempt(cus)) is None  # never sent
    assert processor.lookup(attempt("cus_doesnotexist")) is None


def test_lookup_finds_a_declined_charge_as_failed(processor: StripeProcessor, make_customer) -> None:
    a = attempt(make_customer(DECLINES_ON_CHARGE))
    declined = processor.charge(a)
    found = processor.lookup(a)
    assert found is not None and not found.succeeded
    assert found.processor_ref == declined.processor_ref and "declined" in (found.error or "")
    assert found == declined  # same text: a run resumed after a crash records what an uninterrupted one would


def test_lookup_pages_through_charges(processor: StripeProcessor, make_customer,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(StripeProcessor, "page_size", 2)
    cus = make_customer(VISA)
    attempts = [attempt(cus) for _ in range(5)]
    outs = [processor.charge(a) for a in attempts]
    assert [processor.lookup(a) for a in attempts] == outs


def test_localstripe_ignores_idempotency_keys_so_perform_looks_up(processor: StripeProcessor,
                                                                   make_customer, localstripe: str) -> None:
    cus = make_customer(VISA)
    a = attempt(cus)
    first = processor.charge(a)
    processor.charge(a)
    assert len(charges_of(localstripe, cus)) == 2  # the fake's known gap (SPEC 7)
    # the way the runner resumes a `pre` exchange: found, not charged a third time
    assert perform(processor, a, resume=True) == first
    assert len(charges_of(localstripe, cus)) == 2


def test_credit_is_refused_and_nobody_is_a_merchant(processor: StripeProcessor) -> None:
    with pytest.raises(ProcessorError, match="stripe cannot credit bank accounts"):
        processor.credit(Attempt(1, "payday-1-exchange-1", 1, "a", "cus_1", "credit", 1000))
    assert processor.is_merchant("cus_1") is False


def test_missing_key_is_a_processor_error_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRIPE_API_BASE", "http://127.0.0.1:1")
    with pytest.raises(ProcessorError) as e:
        make_processor("stripe", dsn="unused")
    assert "STRIPE_SECRET_KEY" in str(e.value) and "127.0.0.1" not in str(e.value)


def test_rejected_key_is_a_processor_error_without_the_key(localstripe: str) -> None:
    secret = "rk_live_not_a_secret_key_value_42"  # localstripe only accepts sk_ keys
    p = StripeProcessor(secret, localstripe)
    with pytest.raises(ProcessorError) as e:
        p.charge(attempt("cus_x"))
    assert str(e.value) == "stripe refused STRIPE_SECRET_KEY (http 401)"
    assert secret not in repr(p) and secret not in str(e.value)


def stripe_error(status: int, type_: str, message: str, headers: dict | None = None) -> Response:
    return Response(json.dumps({"error": {"type": type_, "message": message}}), status=status,
                    headers=headers or {}, content_type="application/json")


@pytest.fixture
def fake(httpserver: HTTPServer) -> StripeProcessor:
    return StripeProcessor(TEST_KEY, httpserver.url_for("/").rstrip("/"), timeout=0.5)


def test_429_is_rate_limited_with_retry_after(httpserver: HTTPServer, fake: StripeProcessor) -> None:
    httpserver.expect_request("/v1/charges", method="POST").respond_with_response(
        stripe_error(429, "rate_limit_error", "Too many requests", {"Retry-After": "3"}))
    with pytest.raises(RateLimited) as e:
        fake.charge(attempt("cus_1"))
    assert e.value.retry_after == 3.0 and "429" in str(e.value)


def test_429_without_hint(httpserver: HTTPServer, fake: StripeProcessor) -> None:
    httpserver.expect_request("/v1/charges").respond_with_response(
        stripe_error(429, "rate_limit_error", "Too many requests"))
    with pytest.raises(RateLimited) as e:
        fake.lookup(attempt("cus_1"))
    assert e.value.retry_after is None


@pytest.mark.parametrize("status", [500, 502, 503, 409])
def test_5xx_and_conflicts_are_transient(httpserver: HTTPServer, fake: StripeProcessor, status: int) -> None:
    httpserver.expect_request("/v1/charges").respond_with_response(
        stripe_error(status, "api_error", "Something went wrong"))
    with pytest.raises(TransientError) as e:
        fake.charge(attempt("cus_1"))
    assert not isinstance(e.value, RateLimited) and f"http {status}" in str(e.value)


def test_non_json_5xx_is_transient(httpserver: HTTPServer, fake: StripeProcessor) -> None:
    httpserver.expect_request("/v1/charges").respond_with_data("<html>bad gateway</html>", status=502)
    with pytest.raises(TransientError):
        fake.charge(attempt("cus_1"))


def test_garbage_reply_is_a_processor_error(httpserver: HTTPServer, fake: StripeProcessor) -> None:
    httpserver.expect_request("/v1/charges").respond_with_data("not json", status=200)
    with pytest.raises(ProcessorError) as e:
        fake.charge(attempt("cus_1"))
    assert "\n" not in str(e.value) and TEST_KEY not in str(e.value)


def test_reply_without_status_is_a_processor_error(httpserver: HTTPServer, fake: StripeProcessor) -> None:
    httpserver.expect_request("/v1/charges").respond_with_json({"id": "ch_1", "object": "charge"})
    with pytest.raises(ProcessorError, match="malformed charge"):
        fake.charge(attempt("cus_1"))


def test_timeout_is_transient(httpserver: HTTPServer, fake: StripeProcessor) -> None:
    release = threading.Event()

    def slow(request: Request) -> Response:
        release.wait(10)
        return Response("{}", content_type="application/json")

    httpserver.expect_request("/v1/charges").respond_with_handler(slow)
    try:
        with pytest.raises(TransientError, match="stripe unreachable"):
            fake.charge(attempt("cus_1"))
    finally:
        release.set()  # free the (single-threaded) server for the next test
        time.sleep(0.1)


def test_connection_refused_is_transient() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = StripeProcessor(TEST_KEY, f"http://127.0.0.1:{port}", timeout=2)
    with pytest.raises(TransientError) as e:
        p.charge(attempt("cus_1"))
    assert TEST_KEY not in str(e.value)


def test_sdk_retries_are_off(httpserver: HTTPServer, fake: StripeProcessor) -> None:
    httpserver.expect_request("/v1/charges").respond_with_response(
        stripe_error(503, "api_error", "unavailable"))
    with pytest.raises(TransientError, match="http 503"):
        fake.charge(attempt("cus_1"))
    assert len(httpserver.log) == 1
    request = httpserver.log[0][0]
    assert request.headers["Idempotency-Key"].startswith("payday-7-exchange-")


def test_outcome_for_a_pending_charge_is_success(httpserver: HTTPServer, fake: StripeProcessor) -> None:
    httpserver.expect_request("/v1/charges").respond_with_json(
        {"id": "ch_p", "object": "charge", "status": "pending"})
    assert fake.charge(attempt("cus_1")) == Outcome(True, processor_ref="ch_p")
