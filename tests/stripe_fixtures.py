"""localstripe for tests outside tests/processors (whose conftest.py holds the launcher).

    localstripe_server()        context manager: a localstripe on a free port, yields its base URL
    CARDS                       tests/processors/localstripe_cards.py (TEST_KEY, VISA, DECLINES_ON_CHARGE)
    make_customer(base, card)   a localstripe customer whose default source is that card
    charges_of(base, customer)  the customer's charges, as plain dicts
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent / "processors"


def _processors_conftest() -> Any:
    """tests/processors/conftest.py, loaded by path (not as a conftest: its fixtures stay there)."""
    name = "payday_tests_localstripe"
    if name in sys.modules:
        return sys.modules[name]
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))  # for its `import localstripe_cards`
    spec = importlib.util.spec_from_file_location(name, HERE / "conftest.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    sys.modules[name] = mod
    return mod


_mod = _processors_conftest()
localstripe_server = _mod.localstripe_server
import localstripe_cards as CARDS  # noqa: E402  (tests/processors, on sys.path now)


def _client(base: str) -> Any:
    import stripe

    return stripe.StripeClient(CARDS.TEST_KEY, base_addresses={"api": base}, max_network_retries=0)


def make_customer(base: str, number: str) -> str:
    client = _client(base)
    tok = client.v1.tokens.create(params={"card": {
        "number": number, "exp_month": "12", "exp_year": "2030", "cvc": "123"}})
    return str(client.v1.customers.create(params={"source": tok.id}).id)


def charges_of(base: str, customer: str) -> list[dict[str, Any]]:
    page = _client(base).v1.charges.list(params={"customer": customer, "limit": 100})
    return [c.to_dict() for c in page.auto_paging_iter()]
