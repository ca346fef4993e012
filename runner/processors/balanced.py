"""Balanced Payments, through a small stdlib HTTP client (no ``balanced`` package:
it is Python-2-only and pins ``certifi==0.0.8``).

Configuration (environment only): ``BALANCED_API_KEY`` (HTTP basic auth user name, empty
password) and ``BALANCED_API_BASE`` (default ``https://api.balancedpayments.com``).
A route is an account URI such as ``/v1/marketplaces/MP1/accounts/AC1``.

The REST shapes used (Balanced API v1, as the 2013 reference used it)::

    GET  {base}{account_uri}
         200 {"uri": ..., "roles": ["buyer", "merchant"], "debits_uri": ..., "credits_uri": ...}
    POST {base}{account_uri}/debits     (a card charge)
    POST {base}{account_uri}/credits    (a payout to the bank account)
         body {"amount": <cents>, "description": <username>,
               "meta": {"idempotency_key": ..., "exchange_id": ..., "payday_id": ..., "username": ...}}
         201 {"uri": ..., "status": "succeeded" | "pending" | "failed", "amount": ..., "meta": {...}}
    GET  {base}{account_uri}/debits?meta.idempotency_key=<key>   (or /credits?...)
         200 {"items": [<debit or credit>, ...]}
    errors: 4xx {"status_code": 402, "category_code": "card-declined", "description": "..."}

Classification: ``succeeded``/``pending`` (accepted; ACH settles later) is a success,
``failed`` a permanent failure; other 4xx are permanent failures (text: description and
category code), except 401/403 (ProcessorError: the key), 409 (a conflict with an
earlier request with this key: it is looked up), 408/429/5xx/timeouts/connection
errors (TransientError; 429 is RateLimited). A reply that is not the JSON described
is a ProcessorError. The API key never appears in a message.
"""
from __future__ import annotations

import base64
import http.client
import json
import os
import re
import socket
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Mapping

from .base import (Attempt, Kind, Outcome, ProcessorError, RateLimited, TransientError,
                   one_line, require_kind)

DEFAULT_API_BASE = "https://api.balancedpayments.com"
_ROUTE = re.compile(r"^/[A-Za-z0-9._~/-]+$")


class _Reply:
    def __init__(self, status: int, body: Any, headers: Mapping[str, str]) -> None:
        self.status, self.body, self.headers = status, body, headers


class BalancedProcessor:
    name = "balanced"

    def __init__(self, api_key: str, api_base: str = DEFAULT_API_BASE, *, timeout: float = 30.0) -> None:
        if not api_key:
            raise ProcessorError("BALANCED_API_KEY is not set (export it; it is never read from arguments)")
        token = base64.b64encode(f"{api_key}:".encode()).decode()
        self._auth = "Basic " + token
        self._secrets = (api_key, token)  # blanked out of every message
        self.api_base = api_base.rstrip("/")
        self.timeout = timeout

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ, *, timeout: float = 30.0) -> BalancedProcessor:
        return cls(env.get("BALANCED_API_KEY", ""), env.get("BALANCED_API_BASE") or DEFAULT_API_BASE,
                   timeout=timeout)

    def __repr__(self) -> str:
        return f"BalancedProcessor(api_base={self.api_base!r})"

    # -- the interface -------------------------------------------------------------

    def charge(self, a: Attempt) -> Outcome:
        require_kind(a, "charge", self.name)
        return self._move(a)

    def credit(self, a: Attempt) -> Outcome:
        require_kind(a, "credit", self.name)
        return self._move(a)

    def lookup(self, a: Attempt) -> Outcome | None:
        if not _ROUTE.match(a.route):
            return None
        r = self._call("GET", f"{a.route}/{_collection(a.kind)}",
                       query={"meta.idempotency_key": a.idempotency_key})
        if r.status == 404:
            return None  # no such account: nothing was ever moved through it
        if r.status != 200:
            self._fail(r, f"lookup of {a.idempotency_key}")
        items = r.body.get("items") if isinstance(r.body, dict) else None
        if not isinstance(items, list):
            raise ProcessorError("balanced: malformed lookup reply (no items list)")
        found = [self._outcome(i, a.kind) for i in items
                 if isinstance(i, dict) and (i.get("meta") or {}).get("idempotency_key") == a.idempotency_key]
        wins = [o for o in found if o.succeeded]
        return (wins or found)[0] if found else None

    def is_merchant(self, route: str) -> bool:
        if not _ROUTE.match(route):
            return False
        r = self._call("GET", route)
        if r.status == 404:
            return False
        if r.status != 200:
            self._fail(r, "account lookup")
        roles = r.body.get("roles") if isinstance(r.body, dict) else None
        if not isinstance(roles, list):
            raise ProcessorError("balanced: malformed account reply (no roles list)")
        return "merchant" in roles

    # -- helpers -------------------------------------------------------------------

    def _move(self, a: Attempt) -> Outcome:
        if not _ROUTE.match(a.route):
            return Outcome(False, error=one_line(f"invalid balanced account uri {a.route!r}"))
        body = {"amount": a.cents, "description": a.username, "meta": a.metadata()}
        r = self._call("POST", f"{a.route}/{_collection(a.kind)}", body=body,
                       idempotency_key=a.idempotency_key)
        if r.status in (200, 201):
            return self._outcome(r.body, a.kind)
        if r.status == 409:
            found = self.lookup(a)
            if found is not None:
                return found
            raise TransientError(f"balanced: 409 conflict for {a.idempotency_key} but no earlier "
                                 f"{a.kind} found yet")
        return self._fail(r, a.kind)

    def _fail(self, r: _Reply, what: str) -> Outcome:
        """Classify a non-success reply: a permanent failure Outcome, or raise."""
        s = r.status
        if s in (401, 403):
            raise ProcessorError(f"balanced refused BALANCED_API_KEY (http {s})")
        if s == 429:
            raise RateLimited(f"balanced rate limit (http 429) during {what}", _retry_after(r.headers))
        if s == 408 or s >= 500:
            raise TransientError(f"balanced error (http {s}) during {what}{self._detail(r)}")
        if 400 <= s < 500 and isinstance(r.body, dict) and r.body.get("description"):
            code = r.body.get("category_code") or f"http {s}"
            if what in ("charge", "credit"):
                return Outcome(False, error=one_line(f"{r.body['description']} ({code})", *self._secrets))
            raise ProcessorError(f"balanced: {what} failed{self._detail(r)}")
        raise ProcessorError(f"balanced: malformed reply (http {s}) during {what}")

    def _detail(self, r: _Reply) -> str:
        if isinstance(r.body, dict) and r.body.get("description"):
            code = r.body.get("category_code") or "no category"
            return one_line(f": {r.body['description']} ({code})", *self._secrets)
        return ""

    def _outcome(self, obj: Any, kind: Kind) -> Outcome:
        if not isinstance(obj, dict) or not isinstance(obj.get("uri"), str) or "status" not in obj:
            raise ProcessorError(f"balanced: malformed {kind} in reply (no uri or status)")
        status = obj["status"]
        if status in ("succeeded", "pending"):
            return Outcome(True, processor_ref=obj["uri"])
        if status == "failed":
            why = obj.get("failure_reason") or obj.get("description") or f"{kind} failed"
            return Outcome(False, error=one_line(f"{kind} failed: {why}", *self._secrets),
                           processor_ref=obj["uri"])
        raise ProcessorError(one_line(f"balanced: {kind} {obj['uri']} has unknown status {str(status)[:40]!r}",
                                      *self._secrets))

    def _call(self, method: str, path: str, *, body: Any = None,
              query: Mapping[str, str] | None = None, idempotency_key: str | None = None) -> _Reply:
        url = self.api_base + path + ("?" + urllib.parse.urlencode(query) if query else "")
        headers = {"Authorization": self._auth, "Accept": "application/json",
                   "User-Agent": "payday"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        req = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                status, raw, hdrs = resp.status, resp.read(), dict(resp.headers)
        except urllib.error.HTTPError as e:
            try:
                status, raw, hdrs = e.code, e.read(), dict(e.headers or {})
            except (OSError, http.client.HTTPException) as exc:
                raise TransientError(f"balanced: reply lost during {method} (http {e.code})") from exc
            finally:
                e.close()
        except (urllib.error.URLError, socket.timeout, OSError, http.client.HTTPException) as e:
            reason = getattr(e, "reason", None) or e
            raise TransientError(one_line(f"balanced unreachable during {method}: {reason}", *self._secrets)) from e
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        if parsed is None and 200 <= status < 300:
            raise ProcessorError(f"balanced: malformed reply (http {status}, not JSON) to {method}")
        return _Reply(status, parsed, hdrs)


def _collection(kind: Kind) -> str:
    return "debits" if kind == "charge" else "credits"


def _retry_after(headers: Mapping[str, str]) -> float | None:
    for k, v in headers.items():
        if k.lower() == "retry-after":
            try:
                return max(0.0, float(v))
            except ValueError:
                return None
    return None
