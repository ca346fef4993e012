"""How many exchanges the runner hands a processor's batch API per call (payday.run.micro_batch_size)."""
from __future__ import annotations

import pytest

from payday.run import MAX_MICRO_BATCH, MICRO_BATCH, micro_batch_size


@pytest.mark.parametrize(("expected", "concurrency", "size"), [
    (None, 8, MICRO_BATCH),  # not known (a reconcile without a count): the floor
    (0, 8, MICRO_BATCH),
    (5, 1, MICRO_BATCH),
    (120, 2, MICRO_BATCH),  # tests/crash_helpers.world(): still 3 calls, as its crash points expect
    (1_000, 8, 63),  # a payout batch: 16 calls, two per worker
    (1_255, 8, 79),  # the 10k benchmark's charges
    (10_000, 64, 79),
    (124_606, 8, MAX_MICRO_BATCH),  # the 1m benchmark's charges: capped
])
def test_two_calls_per_worker_within_bounds(expected: int | None, concurrency: int, size: int) -> None:
    assert micro_batch_size(expected, concurrency) == size


def test_every_exchange_fits_in_two_calls_per_worker_below_the_cap() -> None:
    for expected in range(1, 5_000, 37):
        for concurrency in (1, 2, 8, 64):
            size = micro_batch_size(expected, concurrency)
            assert MICRO_BATCH <= size <= MAX_MICRO_BATCH
            calls = -(-expected // size)
            assert calls <= 2 * concurrency or size == MAX_MICRO_BATCH
