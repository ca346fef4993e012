"""Logging for the payday runner: timestamped lines on stderr."""
from __future__ import annotations

import logging
import sys
import time
from typing import TextIO

LOGGER_NAME = "payday"


class _IsoFormatter(logging.Formatter):
    """ISO 8601 timestamps in UTC with milliseconds, e.g. 2024-01-05T12:00:00.123Z."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        return f"{base}.{int(record.msecs):03d}Z"


def setup(verbose: bool = False, stream: TextIO | None = None) -> logging.Logger:
    """Configure and return the `payday` logger (idempotent)."""
    log = logging.getLogger(LOGGER_NAME)
    log.setLevel(logging.DEBUG if verbose else logging.INFO)
    for h in list(log.handlers):
        if getattr(h, "_payday", False):
            log.removeHandler(h)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler._payday = True  # type: ignore[attr-defined]
    handler.setFormatter(_IsoFormatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.propagate = False
    return log


def get() -> logging.Logger:
    return logging.getLogger(LOGGER_NAME)
