"""Payment processors: one small interface (``base.Processor``), three implementations.

Choosing per exchange: each exchange row carries its processor name (``balanced``
when the participant has a ``balanced_account_uri``, else ``stripe``; ``sandbox`` when
the run overrides it). ``ProcessorSet.processor_for(name)`` returns that processor,
built on first use (so a missing ``STRIPE_SECRET_KEY`` only matters when a Stripe
exchange exists) and shared by all threads afterwards.
"""
from __future__ import annotations

import os
import threading
from typing import Mapping

from .base import (Attempt, Outcome, Processor, ProcessorError, RateLimited,
                   TransientError, cents)
from .retry import RateLimiter, call_with_retry, perform

NAMES = ("stripe", "balanced", "sandbox")

__all__ = [
    "Attempt", "Outcome", "Processor", "ProcessorError", "RateLimited", "TransientError",
    "RateLimiter", "call_with_retry", "perform", "cents", "make_processor", "ProcessorSet",
    "NAMES",
]


def make_processor(name: str, *, dsn: str, latency: float = 0.0,
                   env: Mapping[str, str] | None = None) -> Processor:
    """Build a processor by name. Stripe and Balanced read their keys from ``env``
    (default ``os.environ``); the sandbox keeps its state in the database at ``dsn``."""
    environ = os.environ if env is None else env
    if name == "sandbox":
        from .sandbox import SandboxProcessor

        return SandboxProcessor(dsn, latency)
    if name == "stripe":
        from .stripe import StripeProcessor

        return StripeProcessor.from_env(environ)
    if name == "balanced":
        from .balanced import BalancedProcessor

        return BalancedProcessor.from_env(environ)
    if name == "manual":
        raise ProcessorError("a 'manual' exchange is settled by hand (payday.charge_outcome / credit_outcome)")
    raise ProcessorError(f"unknown processor {name!r} (expected one of: {', '.join(NAMES)})")


class ProcessorSet:
    """The processors of one run, built lazily, one instance per name, thread-safe."""

    def __init__(self, *, dsn: str, latency: float = 0.0, env: Mapping[str, str] | None = None) -> None:
        self._dsn, self._latency, self._env = dsn, latency, env
        self._built: dict[str, Processor] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ProcessorSet(built={sorted(self._built)})"

    def processor_for(self, exchange_processor_name: str) -> Processor:
        with self._lock:
            p = self._built.get(exchange_processor_name)
            if p is None:
                p = make_processor(exchange_processor_name, dsn=self._dsn,
                                   latency=self._latency, env=self._env)
                self._built[exchange_processor_name] = p
            return p

    def close(self) -> None:
        with self._lock:
            for p in self._built.values():
                close = getattr(p, "close", None)
                if close is not None:
                    close()
            self._built.clear()

    def __enter__(self) -> ProcessorSet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
