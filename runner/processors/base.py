"""The interface every payment processor implements.

The runner records an exchange as ``pre`` in the database, builds an :class:`Attempt`
from it, asks the participant's processor to ``charge`` (or ``credit``) it, and
records the :class:`Outcome`. Three kinds of trouble are told apart:

* a *permanent* failure (card declined, unknown customer, ...) is an ``Outcome`` with
  ``succeeded=False`` and an ``error``: it is recorded and payday goes on;
* a :class:`TransientError` (429, timeout, connection error, 5xx) means "try again
  later with the same idempotency key" -- but first ``lookup`` the key, because the
  processor may have acted on a request whose reply was lost (see ``retry.perform``);
* a :class:`ProcessorError` (misconfiguration, authentication, malformed reply) stops
  the runner with a one-line message.

Money is integer cents here. Secrets never appear in an exception message or a repr.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, Mapping, Protocol, runtime_checkable

Kind = Literal["charge", "credit"]


class ProcessorError(Exception):
    """Misconfiguration or a malformed reply: the runner stops with this one-line message."""


class TransientError(Exception):
    """Retry later with the same idempotency key (429, timeout, connection error, 5xx)."""


class RateLimited(TransientError):
    """HTTP 429. ``retry_after`` is the processor's hint in seconds, when it gave one."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def cents(dollars: Decimal) -> int:
    """Exact conversion of a dollar amount to integer cents (refuses sub-cent amounts)."""
    if not isinstance(dollars, Decimal) or not dollars.is_finite():
        raise ValueError(f"expected a finite Decimal amount, got {dollars!r}")
    scaled = dollars * 100
    if scaled != scaled.to_integral_value():
        raise ValueError(f"amount {dollars} has a fraction of a cent")
    return int(scaled)


@dataclass(frozen=True)
class Attempt:
    """One charge or credit to perform, as recorded by a ``pre`` exchange."""

    exchange_id: int
    idempotency_key: str  # 'payday-<payday id>-exchange-<exchange id>'
    payday_id: int
    username: str
    route: str  # balanced_account_uri or stripe_customer_id
    kind: Kind
    cents: int  # charge: what the card pays (charge_amount); credit: what the bank gets

    def __post_init__(self) -> None:
        if self.kind not in ("charge", "credit"):
            raise ValueError(f"attempt kind must be 'charge' or 'credit', not {self.kind!r}")
        if type(self.cents) is not int or self.cents <= 0:
            raise ValueError(f"attempt cents must be a positive int, not {self.cents!r}")
        if not self.idempotency_key or not self.route:
            raise ValueError("attempt needs an idempotency key and a route")

    @classmethod
    def from_exchange(cls, row: Mapping[str, Any]) -> Attempt:
        """Build from a ``payday.exchanges`` row (mapping with its column names).

        Charge rows hold the net amount and the fee: the card pays amount + fee.
        Credit rows hold minus what the bank account receives.
        """
        amount, fee = row["amount"], row["fee"]
        kind: Kind = "charge" if amount > 0 else "credit"
        return cls(
            exchange_id=int(row["id"]),
            idempotency_key=str(row["idempotency_key"]),
            payday_id=int(row["payday_id"]),
            username=str(row["participant"]),
            route=str(row["route"] or ""),
            kind=kind,
            cents=cents(amount + fee) if kind == "charge" else cents(-amount),
        )

    def metadata(self) -> dict[str, str]:
        """What is sent to the processor with the call, so it can be found again."""
        return {
            "idempotency_key": self.idempotency_key,
            "exchange_id": str(self.exchange_id),
            "payday_id": str(self.payday_id),
            "username": self.username,
        }


@dataclass(frozen=True)
class Outcome:
    succeeded: bool
    error: str | None = None  # set on a permanent failure
    processor_ref: str | None = None  # the processor's own id of the charge/credit

    def __post_init__(self) -> None:
        if not self.succeeded and not self.error:
            raise ValueError("a failed outcome needs an error text")


@runtime_checkable
class Processor(Protocol):
    name: str  # 'stripe' | 'balanced' | 'sandbox'

    def charge(self, a: Attempt) -> Outcome: ...

    def credit(self, a: Attempt) -> Outcome: ...

    def lookup(self, a: Attempt) -> Outcome | None:
        """The recorded outcome of an earlier call with this key; None if never seen."""
        ...

    def is_merchant(self, route: str) -> bool: ...


def one_line(text: object, *secrets: str, limit: int = 240) -> str:
    """A message safe to show: one line, bounded length, every secret blanked out."""
    s = " ".join(str(text).split())
    for secret in secrets:
        if secret:
            s = s.replace(secret, "[redacted]")
    return s if len(s) <= limit else s[: limit - 3] + "..."


def require_kind(a: Attempt, kind: Kind, processor: str) -> None:
    if a.kind != kind:
        raise ProcessorError(
            f"{processor}: exchange {a.exchange_id} is a {a.kind}, not a {kind}"
        )
