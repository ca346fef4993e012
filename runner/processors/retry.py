"""Retries with backoff, a shared requests-per-second ceiling, and ``perform``.

``perform`` is how the runner should call a processor: it retries transient failures
with the same idempotency key, and before any retry that follows an ambiguous failure
(a timeout or a 5xx: the processor may have acted on the request) it looks the key up
first, because neither localstripe nor Balanced honours idempotency keys.
"""
from __future__ import annotations

import logging
import random
import threading
import time
from typing import Callable, TypeVar

from .base import Attempt, Outcome, Processor, RateLimited, TransientError

T = TypeVar("T")
log = logging.getLogger("payday.processors")


def backoff_delay(
    attempt: int, *, base_delay: float, max_delay: float, rng: Callable[[], float]
) -> float:
    """Delay before retry number ``attempt`` (0-based): exponential, capped, half jittered."""
    ceiling = min(max_delay, base_delay * 2.0**attempt)
    return ceiling / 2 + rng() * ceiling / 2


def call_with_retry(
    fn: Callable[[], T],
    *,
    attempts: int = 5,
    base_delay: float = 0.5,
    max_delay: float = 30,
    sleep: Callable[[float], None] = time.sleep,
    rng: Callable[[], float] = random.random,
    on_retry: Callable[[TransientError, float], None] | None = None,
) -> T:
    """Call ``fn``; on TransientError wait and call again, at most ``attempts`` calls.

    A RateLimited error waits at least its ``retry_after`` (the processor knows best).
    After the last attempt the last TransientError propagates; anything else propagates
    at once.
    """
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    for i in range(attempts):
        try:
            return fn()
        except TransientError as e:
            if i == attempts - 1:
                raise
            delay = backoff_delay(i, base_delay=base_delay, max_delay=max_delay, rng=rng)
            if isinstance(e, RateLimited) and e.retry_after is not None:
                delay = max(delay, e.retry_after)
            if on_retry is not None:
                on_retry(e, delay)
            sleep(delay)
    raise AssertionError("unreachable")


class RateLimiter:
    """Thread-safe token bucket: at most ``rps`` acquisitions per second on average,
    up to ``burst`` at once. ``acquire()`` blocks (outside the lock) until its slot.
    ``pause(seconds)`` holds every later acquisition back, e.g. after a 429."""

    def __init__(
        self,
        rps: float,
        *,
        burst: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not rps > 0:
            raise ValueError("rps must be positive")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self.interval = 1.0 / rps
        self.burst = burst
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self._next = clock() - burst * self.interval  # theoretical time of the next token

    def acquire(self) -> float:
        """Block until a token is available; returns how long it waited."""
        with self._lock:
            now = self._clock()
            self._next = max(self._next, now - (self.burst - 1) * self.interval)
            slot = max(now, self._next)
            self._next += self.interval
            wait = slot - now
        if wait > 0:
            self._sleep(wait)
        return wait

    def pause(self, seconds: float) -> None:
        """No token before ``seconds`` from now."""
        with self._lock:
            self._next = max(self._next, self._clock() + seconds)


def perform(
    processor: Processor,
    a: Attempt,
    *,
    resume: bool = False,
    limiter: RateLimiter | None = None,
    attempts: int = 5,
    base_delay: float = 0.5,
    max_delay: float = 30,
    sleep: Callable[[float], None] = time.sleep,
) -> Outcome:
    """Charge or credit ``a`` once, as far as the processor can tell us.

    ``resume=True`` (reconciling a ``pre`` exchange found on start) looks the key up
    before calling. A TransientError escapes only when every attempt failed: the
    exchange then stays ``pre`` and is reconciled on the next run.
    """
    maybe_sent = resume

    def once() -> Outcome:
        nonlocal maybe_sent
        if maybe_sent:
            if limiter is not None:
                limiter.acquire()
            found = processor.lookup(a)
            if found is not None:
                return found
            maybe_sent = False
        if limiter is not None:
            limiter.acquire()
        try:
            return processor.charge(a) if a.kind == "charge" else processor.credit(a)
        except RateLimited:
            raise  # a 429 means the request was refused, not acted upon
        except TransientError:
            maybe_sent = True
            raise

    def on_retry(e: TransientError, delay: float) -> None:
        if limiter is not None and isinstance(e, RateLimited):
            limiter.pause(delay)
        log.warning("%s %s %s: %s; retrying in %.1fs", processor.name, a.kind,
                    a.idempotency_key, e, delay)

    return call_with_retry(once, attempts=attempts, base_delay=base_delay,
                           max_delay=max_delay, sleep=sleep, on_retry=on_retry)
