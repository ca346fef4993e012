"""Stripe, through the official ``stripe`` SDK (v16, ``StripeClient``).

Configuration comes from the environment only: ``STRIPE_SECRET_KEY`` (required) and
``STRIPE_API_BASE`` (optional: e.g. a local ``localstripe`` server in tests).

A charge takes the customer's default source, in cents, USD, with the exchange's
idempotency key both as the request's ``Idempotency-Key`` and in ``metadata`` (with
exchange_id, payday_id and username). ``lookup`` does not rely on the key -- localstripe
ignores it -- but lists the customer's charges and matches ``metadata.idempotency_key``.

The SDK's own retries are off (``max_network_retries=0``): ``retry.perform`` retries with
the same key and looks the key up before retrying an ambiguous failure.
"""
from __future__ import annotations

import logging
import os
from typing import Any, Mapping, NoReturn

import stripe

from .base import (Attempt, Outcome, ProcessorError, RateLimited, TransientError,
                   one_line, require_kind)

log = logging.getLogger("payday.processors.stripe")


class StripeProcessor:
    name = "stripe"
    page_size = 100  # charges per list request in lookup

    def __init__(self, api_key: str, api_base: str | None = None, *, timeout: float = 30.0) -> None:
        if not api_key:
            raise ProcessorError("STRIPE_SECRET_KEY is not set (export it; it is never read from arguments)")
        self._key = api_key
        self.api_base = api_base
        kwargs: dict[str, Any] = {}
        if api_base:
            kwargs["base_addresses"] = {"api": api_base.rstrip("/")}
        self._client = stripe.StripeClient(
            api_key,
            max_network_retries=0,
            http_client=stripe.RequestsClient(timeout=timeout),
            **kwargs,
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ, *, timeout: float = 30.0) -> StripeProcessor:
        return cls(env.get("STRIPE_SECRET_KEY", ""), env.get("STRIPE_API_BASE") or None, timeout=timeout)

    def __repr__(self) -> str:
        return f"StripeProcessor(api_base={self.api_base!r})"

    # -- the interface -------------------------------------------------------------

    def charge(self, a: Attempt) -> Outcome:
        require_kind(a, "charge", self.name)
        try:
            ch = self._client.v1.charges.create(
                params={
                    "customer": a.route,
                    "amount": a.cents,
                    "currency": "usd",
                    "description": a.username,
                    "metadata": a.metadata(),
                },
                options={"idempotency_key": a.idempotency_key},
            )
        except stripe.CardError as e:
            return Outcome(False, error=self._declined(e.user_message, e.code), processor_ref=_charge_id(e))
        except stripe.InvalidRequestError as e:
            if e.http_status == 404 or e.code == "resource_missing":
                return Outcome(False, error=self._text(f"invalid customer {a.route}", e))
            return Outcome(False, error=self._text("charge refused", e))
        except stripe.StripeError as e:
            self._raise(e)
        return self._outcome(_plain(ch))

    def credit(self, a: Attempt) -> Outcome:
        raise ProcessorError("stripe cannot credit bank accounts; payouts go through balanced")

    def lookup(self, a: Attempt) -> Outcome | None:
        found: list[Outcome] = []
        try:
            page = self._client.v1.charges.list(params={"customer": a.route, "limit": self.page_size})
            if not hasattr(page, "auto_paging_iter"):
                raise ProcessorError(f"stripe: malformed reply listing charges ({type(page).__name__}, not a list object)")
            for obj in page.auto_paging_iter():
                ch = _plain(obj)
                if (ch.get("metadata") or {}).get("idempotency_key") == a.idempotency_key:
                    found.append(self._outcome(ch))
        except stripe.InvalidRequestError as e:
            if e.http_status == 404 or e.code == "resource_missing":
                return None  # no such customer: nothing was ever charged to it
            raise ProcessorError(self._text("stripe: cannot list charges", e)) from e
        except stripe.StripeError as e:
            self._raise(e)
        wins = [o for o in found if o.succeeded]
        if len(wins) > 1:
            log.error("stripe: %d succeeded charges carry key %s (%s): refund all but one",
                      len(wins), a.idempotency_key, ", ".join(str(o.processor_ref) for o in wins))
        return (wins or found)[0] if found else None

    def is_merchant(self, route: str) -> bool:
        return False

    # -- helpers -------------------------------------------------------------------

    def _text(self, what: str, e: stripe.StripeError) -> str:
        detail = e.user_message or "no message"
        code = f", {e.code}" if e.code else ""
        return one_line(f"{what}: {detail} (http {e.http_status}{code})", self._key)

    def _declined(self, message: str | None, code: str | None) -> str:
        """A decline's text, the same whether it is the charge call's answer (CardError) or
        found later by ``lookup`` (a failed charge): a run resumed after a crash must record
        what an uninterrupted run would have."""
        return one_line(f"card declined: {message or 'no message'}" + (f" ({code})" if code else ""), self._key)

    def _raise(self, e: stripe.StripeError) -> NoReturn:
        """Turn any other SDK error into a TransientError or a ProcessorError."""
        status = e.http_status
        if isinstance(e, stripe.RateLimitError):
            raise RateLimited(self._text("stripe rate limit", e), _retry_after(e)) from e
        if isinstance(e, stripe.APIConnectionError):
            raise TransientError(one_line(f"stripe unreachable: {e.user_message}", self._key)) from e
        if isinstance(e, (stripe.AuthenticationError, stripe.PermissionError)):
            raise ProcessorError(f"stripe refused STRIPE_SECRET_KEY (http {status})") from e
        if status is None or status >= 500 or status in (408, 409):
            raise TransientError(self._text("stripe error", e)) from e
        raise ProcessorError(self._text("stripe: unexpected reply", e)) from e

    def _outcome(self, ch: dict[str, Any]) -> Outcome:
        try:
            ref, status = ch["id"], ch["status"]
        except (KeyError, TypeError) as exc:
            raise ProcessorError("stripe: malformed charge in reply (no id or status)") from exc
        if status in ("succeeded", "pending"):  # pending: accepted, settles later
            return Outcome(True, processor_ref=ref)
        if status == "failed":
            return Outcome(False, error=self._declined(ch.get("failure_message"), ch.get("failure_code")),
                           processor_ref=ref)
        raise ProcessorError(one_line(f"stripe: charge {ref} has unknown status {str(status)[:40]!r}", self._key))


def _plain(obj: Any) -> dict[str, Any]:
    """A StripeObject (not a dict in SDK v16) as a plain dict."""
    d = obj.to_dict() if hasattr(obj, "to_dict") else obj
    if not isinstance(d, dict):
        raise ProcessorError("stripe: malformed reply (expected a JSON object)")
    return d


def _charge_id(e: stripe.StripeError) -> str | None:
    body = e.json_body if isinstance(e.json_body, dict) else {}
    ref = (body.get("error") or {}).get("charge")
    return ref if isinstance(ref, str) else None


def _retry_after(e: stripe.StripeError) -> float | None:
    value = (e.headers or {}).get("Retry-After") or (e.headers or {}).get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
