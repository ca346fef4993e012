"""The Balanced client against a local HTTP server speaking Balanced's REST shapes."""
from __future__ import annotations

import base64
import json
import re
import socket
import threading
import time

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from payday.processors import Attempt, Outcome, ProcessorError, RateLimited, TransientError, make_processor
from payday.processors.balanced import BalancedProcessor

KEY = "ak-test-2QyKc7vHeZQOAvMqsuZzWnu2mT2Y6pbB"
MP = "/v1/marketplaces/MP1"
MERCHANT = f"{MP}/accounts/AC_merchant"
BUYER = f"{MP}/accounts/AC_buyer"
DECLINING = f"{MP}/accounts/AC_declining"
ACCOUNT_PATH = re.compile(r"^/v1/marketplaces/MP1/accounts/[^/]+(/debits|/credits)?$")


def json_response(body: object, status: int = 200, headers: dict | None = None) -> Response:
    return Response(json.dumps(body), status=status, headers=headers or {}, content_type="application/json")


def error(status: int, category: str, description: str) -> Response:
    return json_response({"status_code": status, "category_code": category, "description": description}, status)


class FakeBalanced:
    """Accounts, debits and credits kept in memory; a repeated idempotency key gets a 409."""

    def __init__(self) -> None:
        self.roles = {MERCHANT: ["buyer", "merchant"], BUYER: ["buyer"], DECLINING: ["buyer"]}
        self.items: dict[str, list[dict]] = {"debits": [], "credits": []}
        self.posted: list[dict] = []
        self.auth: list[str] = []

    def handle(self, request: Request) -> Response:
        self.auth.append(request.headers.get("Authorization", ""))
        m = re.match(r"^(/v1/marketplaces/MP1/accounts/[^/]+)(?:/(debits|credits))?$", request.path)
        assert m, request.path
        account, collection = m.groups()
        if account not in self.roles:
            return error(404, "not-found", f"account {account} not found")
        if collection is None:
            return json_response({"uri": account, "roles": self.roles[account],
                                  "debits_uri": account + "/debits", "credits_uri": account + "/credits"})
        if request.method == "GET":
            key = request.args.get("meta.idempotency_key")
            return json_response({"items": [i for i in self.items[collection]
                                            if i["account_uri"] == account and i["meta"]["idempotency_key"] == key]})
        body = json.loads(request.data)
        self.posted.append(body)
        key = body["meta"]["idempotency_key"]
        if any(i["meta"]["idempotency_key"] == key for i in self.items[collection]):
            return error(409, "duplicate", f"a {collection[:-1]} with this idempotency key exists")
        if account == DECLINING:
            user = base64.b64decode(self.auth[-1].split()[1]).decode().split(":")[0]  # a careless server echoing the key
            return error(402, "card-declined", f"R670: Transaction was declined (api key {user})")
        item = {"uri": f"{MP}/{collection}/W{len(self.items[collection]) + 1}", "account_uri": account,
                "status": "succeeded" if collection == "debits" else "pending",
                "amount": body["amount"], "description": body["description"], "meta": body["meta"]}
        self.items[collection].append(item)
        return json_response(item, 201)


@pytest.fixture
def fake(httpserver: HTTPServer) -> FakeBalanced:
    f = FakeBalanced()
    httpserver.expect_request(ACCOUNT_PATH).respond_with_handler(f.handle)
    return f


@pytest.fixture
def balanced(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> BalancedProcessor:
    monkeypatch.setenv("BALANCED_API_KEY", KEY)
    monkeypatch.setenv("BALANCED_API_BASE", httpserver.url_for("/"))
    p = make_processor("balanced", dsn="unused")
    assert isinstance(p, BalancedProcessor)
    p.timeout = 1.0
    return p


def charge(route: str = MERCHANT, n: int = 1, cents: int = 1068) -> Attempt:
    return Attempt(n, f"payday-3-exchange-{n}", 3, f"user{n}", route, "charge", cents)


def credit(route: str = MERCHANT, n: int = 2, cents: int = 2470) -> Attempt:
    return Attempt(n, f"payday-3-exchange-{n}", 3, f"user{n}", route, "credit", cents)


def test_merchant_role(fake: FakeBalanced, balanced: BalancedProcessor) -> None:
    assert balanced.is_merchant(MERCHANT) is True
    assert balanced.is_merchant(BUYER) is False
    assert balanced.is_merchant(f"{MP}/accounts/AC_gone") is False
    assert balanced.is_merchant("not a uri") is False


def test_basic_auth_with_the_key_and_an_empty_password(fake: FakeBalanced, balanced: BalancedProcessor) -> None:
    balanced.is_merchant(MERCHANT)
    assert fake.auth == ["Basic " + base64.b64encode(f"{KEY}:".encode()).decode()]


def test_debit_succeeds(fake: FakeBalanced, balanced: BalancedProcessor) -> None:
    out = balanced.charge(charge(cents=1068))
    assert out == Outcome(True, processor_ref=f"{MP}/debits/W1")
    assert fake.posted == [{"amount": 1068, "description": "user1", "meta": {
        "idempotency_key": "payday-3-exchange-1", "exchange_id": "1", "payday_id": "3", "username": "user1"}}]


def test_credit_succeeds_while_pending(fake: FakeBalanced, balanced: BalancedProcessor) -> None:
    assert balanced.credit(credit()) == Outcome(True, processor_ref=f"{MP}/credits/W1")
    assert fake.items["credits"][0]["amount"] == 2470


def test_decline_is_a_failed_outcome_without_the_key(fake: FakeBalanced, balanced: BalancedProcessor) -> None:
    out = balanced.charge(charge(DECLINING))
    assert not out.succeeded and out.processor_ref is None
    assert out.error == "R670: Transaction was declined (api key [redacted]) (card-declined)"
    assert KEY not in (out.error or "")


def test_unknown_account_is_a_failed_outcome(fake: FakeBalanced, balanced: BalancedProcessor) -> None:
    out = balanced.charge(charge(f"{MP}/accounts/AC_gone"))
    assert not out.succeeded and "not found" in (out.error or "") and "(not-found)" in (out.error or "")
    assert not balanced.charge(charge("cus_not_a_balanced_uri")).succeeded


def test_409_looks_the_key_up(fake: FakeBalanced, balanced: BalancedProcessor) -> None:
    first = balanced.charge(charge(n=5))
    again = balanced.charge(charge(n=5))  # the fake answers 409, the client finds the first debit
    assert again == first and len(fake.items["debits"]) == 1 and len(fake.posted) == 2


def test_lookup_by_meta(fake: FakeBalanced, balanced: BalancedProcessor) -> None:
    debit_out, credit_out = balanced.charge(charge(n=6)), balanced.credit(credit(n=7))
    assert balanced.lookup(charge(n=6)) == debit_out
    assert balanced.lookup(credit(n=7)) == credit_out
    assert balanced.lookup(charge(n=7)) is None  # a credit's key is not a debit
    assert balanced.lookup(charge(n=8)) is None
    assert balanced.lookup(charge(f"{MP}/accounts/AC_gone", n=6)) is None


def test_409_with_nothing_to_find_is_transient(httpserver: HTTPServer, balanced: BalancedProcessor) -> None:
    httpserver.expect_request(f"{MERCHANT}/debits", method="POST").respond_with_response(
        error(409, "duplicate", "in progress"))
    httpserver.expect_request(f"{MERCHANT}/debits", method="GET").respond_with_json({"items": []})
    with pytest.raises(TransientError, match="409"):
        balanced.charge(charge())


def test_429_is_rate_limited(httpserver: HTTPServer, balanced: BalancedProcessor) -> None:
    httpserver.expect_request(f"{MERCHANT}/debits").respond_with_response(
        json_response({"status_code": 429, "category_code": "rate-limit", "description": "slow down"},
                      429, {"Retry-After": "2"}))
    with pytest.raises(RateLimited) as e:
        balanced.charge(charge())
    assert e.value.retry_after == 2.0


@pytest.mark.parametrize("status", [500, 502, 503, 408])
def test_5xx_is_transient(httpserver: HTTPServer, balanced: BalancedProcessor, status: int) -> None:
    httpserver.expect_request(f"{MERCHANT}/credits").respond_with_response(error(status, "server-error", "oops"))
    with pytest.raises(TransientError) as e:
        balanced.credit(credit())
    assert not isinstance(e.value, RateLimited) and f"http {status}" in str(e.value)


def test_html_502_is_transient(httpserver: HTTPServer, balanced: BalancedProcessor) -> None:
    httpserver.expect_request(MERCHANT).respond_with_data("<html>Bad Gateway</html>", status=502)
    with pytest.raises(TransientError):
        balanced.is_merchant(MERCHANT)


@pytest.mark.parametrize("status", [401, 403])
def test_rejected_key_is_a_processor_error_without_the_key(httpserver: HTTPServer, balanced: BalancedProcessor,
                                                           status: int) -> None:
    httpserver.expect_request(f"{MERCHANT}/debits").respond_with_response(
        error(status, "authentication-required", f"bad key {KEY}"))
    with pytest.raises(ProcessorError) as e:
        balanced.charge(charge())
    assert str(e.value) == f"balanced refused BALANCED_API_KEY (http {status})"
    assert KEY not in repr(balanced)


@pytest.mark.parametrize("reply", [
    Response("<html>hello</html>", status=200, content_type="text/html"),
    json_response({"uri": BUYER}),  # no roles
    json_response(["not", "an", "object"]),
])
def test_malformed_account_reply(httpserver: HTTPServer, balanced: BalancedProcessor, reply: Response) -> None:
    httpserver.expect_request(BUYER).respond_with_response(reply)
    with pytest.raises(ProcessorError) as e:
        balanced.is_merchant(BUYER)
    assert "malformed" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("reply", [
    json_response({"status": "succeeded"}, 201),  # no uri
    json_response({"uri": "/d/1", "status": "weird"}, 201),
    Response("created!", status=201),
    Response("teapot", status=418),  # a 4xx that is not Balanced's error JSON
])
def test_malformed_debit_reply(httpserver: HTTPServer, balanced: BalancedProcessor, reply: Response) -> None:
    httpserver.expect_request(f"{MERCHANT}/debits").respond_with_response(reply)
    with pytest.raises(ProcessorError):
        balanced.charge(charge())


def test_malformed_lookup_reply(httpserver: HTTPServer, balanced: BalancedProcessor) -> None:
    httpserver.expect_request(f"{MERCHANT}/debits").respond_with_json({"debits": []})
    with pytest.raises(ProcessorError, match="no items list"):
        balanced.lookup(charge())


def test_failed_status_is_a_failed_outcome(httpserver: HTTPServer, balanced: BalancedProcessor) -> None:
    httpserver.expect_request(f"{MERCHANT}/debits").respond_with_json(
        {"uri": "/d/9", "status": "failed", "failure_reason": "insufficient funds"}, status=201)
    assert balanced.charge(charge()) == Outcome(False, error="charge failed: insufficient funds",
                                                processor_ref="/d/9")


def test_timeout_is_transient(httpserver: HTTPServer, balanced: BalancedProcessor) -> None:
    release = threading.Event()

    def slow(request: Request) -> Response:
        release.wait(10)
        return json_response({})

    httpserver.expect_request(MERCHANT).respond_with_handler(slow)
    balanced.timeout = 0.3
    try:
        with pytest.raises(TransientError, match="unreachable") as e:
            balanced.is_merchant(MERCHANT)
        assert KEY not in str(e.value)
    finally:
        release.set()
        time.sleep(0.1)


def test_connection_refused_is_transient() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = BalancedProcessor(KEY, f"http://127.0.0.1:{port}", timeout=2)
    with pytest.raises(TransientError) as e:
        p.charge(charge())
    assert KEY not in str(e.value)


def test_missing_key_is_a_processor_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ProcessorError, match="BALANCED_API_KEY is not set"):
        make_processor("balanced", dsn="unused")


def test_kind_is_checked(balanced: BalancedProcessor) -> None:
    with pytest.raises(ProcessorError, match="is a credit, not a charge"):
        balanced.charge(credit())
