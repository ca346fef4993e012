"""Fixtures for the processor tests: a real localstripe server, a throwaway database.

    localstripe      base URL of a localstripe server started for the session (killed after)
    stripe_env       STRIPE_SECRET_KEY / STRIPE_API_BASE set for localstripe (monkeypatched)
    make_customer    make_customer(card_number) -> a localstripe customer id with that card
    sandbox_dsn      conninfo of an empty throwaway database (tests/conftest.py's empty_dsn)
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import stripe

from localstripe_cards import TEST_KEY, VISA

LAUNCHER = Path(__file__).with_name("run_localstripe.py")


@contextmanager
def localstripe_server(startup_timeout: float = 20.0) -> Iterator[str]:
    """Run localstripe in a subprocess on a free 127.0.0.1 port; yield its base URL."""
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen([sys.executable, str(LAUNCHER), "0"], stdout=subprocess.PIPE,
                                stderr=log, text=True)
        try:
            port_line: list[str] = []
            reader = threading.Thread(target=lambda: port_line.append(proc.stdout.readline()),  # type: ignore[union-attr]
                                      daemon=True)
            reader.start()
            reader.join(startup_timeout)
            if not port_line or not port_line[0].strip().isdigit():
                log.seek(0)
                raise RuntimeError(f"localstripe did not start: {log.read().decode()[-2000:]}")
            base = f"http://127.0.0.1:{int(port_line[0])}"
            _wait_until_answering(base, proc, startup_timeout)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_until_answering(base: str, proc: subprocess.Popen[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    req = urllib.request.Request(base + "/v1/customers", headers={"Authorization": f"Bearer {TEST_KEY}"})
    while True:
        try:
            with urllib.request.urlopen(req, timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("localstripe is not answering")
        time.sleep(0.05)


@pytest.fixture(scope="session")
def localstripe() -> Iterator[str]:
    with localstripe_server() as base:
        yield base


@pytest.fixture
def stripe_env(localstripe: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("STRIPE_SECRET_KEY", TEST_KEY)
    monkeypatch.setenv("STRIPE_API_BASE", localstripe)
    return {"STRIPE_SECRET_KEY": TEST_KEY, "STRIPE_API_BASE": localstripe}


@pytest.fixture(scope="session")
def make_customer(localstripe: str) -> Callable[[str], str]:
    """A customer whose default source is a card with the given test number."""
    client = stripe.StripeClient(TEST_KEY, base_addresses={"api": localstripe}, max_network_retries=0)

    def make(number: str = VISA) -> str:
        tok = client.v1.tokens.create(params={"card": {
            "number": number, "exp_month": "12", "exp_year": "2030", "cvc": "123"}})
        return client.v1.customers.create(params={"source": tok.id}).id

    return make


@pytest.fixture
def sandbox_dsn(empty_dsn: str) -> str:
    return empty_dsn


@pytest.fixture(autouse=True)
def _no_processor_env_leaks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests decide which processor keys exist; the developer's environment does not."""
    for name in ("STRIPE_SECRET_KEY", "STRIPE_API_BASE", "BALANCED_API_KEY", "BALANCED_API_BASE"):
        if name in os.environ:
            monkeypatch.delenv(name)
