"""call_with_retry, RateLimiter and perform, with injected clocks and sleeps."""
from __future__ import annotations

import threading
import time

import pytest

from payday.processors import (Attempt, Outcome, ProcessorError, RateLimited, RateLimiter,
                               TransientError, call_with_retry, perform)
from payday.processors.retry import backoff_delay


class Flaky:
    """Raises the given errors in turn, then returns 'ok'."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def test_returns_at_once_without_sleeping() -> None:
    sleeps: list[float] = []
    assert call_with_retry(Flaky(), sleep=sleeps.append) == "ok"
    assert sleeps == []


def test_retries_transient_errors_with_exponential_backoff() -> None:
    sleeps: list[float] = []
    fn = Flaky(TransientError("a"), TransientError("b"), TransientError("c"))
    assert call_with_retry(fn, base_delay=1, max_delay=100, sleep=sleeps.append, rng=lambda: 1.0) == "ok"
    assert fn.calls == 4
    assert sleeps == [1, 2, 4]


def test_jitter_stays_within_half_to_full_delay() -> None:
    for i in range(8):
        low = backoff_delay(i, base_delay=0.5, max_delay=30, rng=lambda: 0.0)
        high = backoff_delay(i, base_delay=0.5, max_delay=30, rng=lambda: 0.999999)
        ceiling = min(30, 0.5 * 2**i)
        assert low == ceiling / 2 and ceiling / 2 <= high <= ceiling


def test_delay_is_capped() -> None:
    sleeps: list[float] = []
    fn = Flaky(*[TransientError("x")] * 6)
    call_with_retry(fn, attempts=7, base_delay=1, max_delay=5, sleep=sleeps.append, rng=lambda: 1.0)
    assert max(sleeps) == 5


def test_gives_up_after_attempts_with_the_last_error() -> None:
    sleeps: list[float] = []
    fn = Flaky(TransientError("1"), TransientError("2"), TransientError("3"))
    with pytest.raises(TransientError, match="3"):
        call_with_retry(fn, attempts=3, sleep=sleeps.append)
    assert fn.calls == 3 and len(sleeps) == 2


def test_honours_retry_after() -> None:
    sleeps: list[float] = []
    fn = Flaky(RateLimited("slow down", retry_after=7.5), RateLimited("again", retry_after=None))
    call_with_retry(fn, base_delay=0.5, sleep=sleeps.append, rng=lambda: 0.0)
    assert sleeps == [7.5, 0.5]  # the hint, then ordinary backoff (0.5 * 2 halved)


def test_other_errors_are_not_retried() -> None:
    fn = Flaky(ProcessorError("bad key"))
    with pytest.raises(ProcessorError):
        call_with_retry(fn, sleep=lambda s: pytest.fail("must not sleep"))
    assert fn.calls == 1


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.lock = threading.Lock()

    def __call__(self) -> float:
        with self.lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds


def test_rate_limiter_spaces_acquisitions() -> None:
    clock = FakeClock()
    rl = RateLimiter(10, clock=clock, sleep=clock.sleep)
    waits = [rl.acquire() for _ in range(5)]
    assert waits[0] == 0
    assert all(w == pytest.approx(0.1) for w in waits[1:])
    assert clock.now == pytest.approx(100.4)


def test_rate_limiter_allows_a_burst_then_the_rate() -> None:
    clock = FakeClock()
    rl = RateLimiter(4, burst=3, clock=clock, sleep=lambda s: None)  # time does not move
    waits = [rl.acquire() for _ in range(5)]
    assert waits == pytest.approx([0, 0, 0, 0.25, 0.5])


def test_rate_limiter_refills_while_idle() -> None:
    clock = FakeClock()
    rl = RateLimiter(2, burst=2, clock=clock, sleep=clock.sleep)
    rl.acquire(), rl.acquire(), rl.acquire()
    clock.now += 10
    assert [rl.acquire(), rl.acquire()] == [0, 0]


def test_rate_limiter_pause_holds_everyone_back() -> None:
    clock = FakeClock()
    rl = RateLimiter(100, clock=clock, sleep=lambda s: None)
    rl.acquire()
    rl.pause(3)
    assert rl.acquire() == pytest.approx(3)
    assert rl.acquire() == pytest.approx(3.01)


def test_rate_limiter_is_thread_safe_and_bounds_the_rate() -> None:
    """Real clock: 40 acquisitions from 8 threads at 200/s take at least ~0.19 s."""
    rl = RateLimiter(200)
    start = time.monotonic()
    threads = [threading.Thread(target=lambda: [rl.acquire() for _ in range(5)]) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert time.monotonic() - start >= 39 / 200 - 0.01


def test_rate_limiter_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        RateLimiter(0)
    with pytest.raises(ValueError):
        RateLimiter(1, burst=0)


ATTEMPT = Attempt(1, "payday-1-exchange-1", 1, "alice", "cus_1", "charge", 1000)


class Remote:
    """A processor that acts on the request, then maybe loses the reply."""

    name = "remote"

    def __init__(self, *failures: Exception, lose_reply: bool = False) -> None:
        self.failures = list(failures)
        self.lose_reply = lose_reply
        self.done: dict[str, Outcome] = {}
        self.charges = self.lookups = 0

    def charge(self, a: Attempt) -> Outcome:
        self.charges += 1
        if self.failures:
            e = self.failures.pop(0)
            if self.lose_reply and not isinstance(e, RateLimited):
                self.done[a.idempotency_key] = Outcome(True, processor_ref=f"ch_{self.charges}")
            raise e
        return self.done.setdefault(a.idempotency_key, Outcome(True, processor_ref=f"ch_{self.charges}"))

    credit = charge

    def lookup(self, a: Attempt) -> Outcome | None:
        self.lookups += 1
        return self.done.get(a.idempotency_key)

    def is_merchant(self, route: str) -> bool:
        return False


def test_perform_looks_up_before_retrying_an_ambiguous_failure() -> None:
    p = Remote(TransientError("timeout"), lose_reply=True)
    out = perform(p, ATTEMPT, sleep=lambda s: None)
    assert out == Outcome(True, processor_ref="ch_1")
    assert p.charges == 1 and p.lookups == 1  # found it: no second charge


def test_perform_retries_after_lookup_finds_nothing() -> None:
    p = Remote(TransientError("connection refused"))
    out = perform(p, ATTEMPT, sleep=lambda s: None)
    assert out.succeeded and p.charges == 2 and p.lookups == 1


def test_perform_does_not_look_up_after_a_429() -> None:
    clock = FakeClock()
    rl = RateLimiter(1000, clock=clock, sleep=clock.sleep)
    p = Remote(RateLimited("429", retry_after=2.0))
    slept: list[float] = []
    assert perform(p, ATTEMPT, limiter=rl, sleep=slept.append).succeeded
    assert p.lookups == 0 and p.charges == 2
    assert slept == [2.0]
    assert clock.now >= 102.0  # the limiter was paused for everyone


def test_perform_on_resume_looks_up_first() -> None:
    p = Remote()
    p.done[ATTEMPT.idempotency_key] = Outcome(False, error="card declined", processor_ref="ch_0")
    assert perform(p, ATTEMPT, resume=True) == Outcome(False, error="card declined", processor_ref="ch_0")
    assert p.charges == 0


def test_perform_gives_up_leaving_the_exchange_pre() -> None:
    p = Remote(*[TransientError("down")] * 5)
    with pytest.raises(TransientError):
        perform(p, ATTEMPT, attempts=3, sleep=lambda s: None)
    assert p.charges == 3
