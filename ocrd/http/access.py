"""Who is asking and may they: the token from `Authorization: Bearer` or `X-API-Token`, the per-token rate, role checks.

Raises ApiError (401, 403, 429); never logs or echoes a presented token.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Collection, Mapping

from ocrd.http.problems import ApiError
from ocrd.http.tokens import Role, Token, TokenStore

_CHALLENGE = 'Bearer realm="ocrd"'


def presented_token(headers: Mapping[str, str]) -> str | None:
    """The token a request carries, or None. `Authorization: Bearer T` wins over `X-API-Token: T`."""
    auth = headers.get("authorization")
    if auth:
        scheme, _, value = auth.strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    value = headers.get("x-api-token")
    return value.strip() if value and value.strip() else None


class RateLimiter:
    """A token bucket per API token: `burst` requests at once, then `rate_per_s` sustained."""

    def __init__(self, rate_per_s: float, burst: int, clock: Callable[[], float] = time.monotonic):
        self.rate_per_s = rate_per_s
        self.burst = float(burst)
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # name -> (tokens left, time of last refill)

    def take(self, name: str) -> float:
        """Spend one request of `name`'s bucket: 0 when allowed, else the seconds until one is free."""
        now = self._clock()
        with self._lock:
            left, then = self._buckets.get(name, (self.burst, now))
            left = min(self.burst, left + (now - then) * self.rate_per_s)
            if left >= 1:
                self._buckets[name] = (left - 1, now)
                return 0.0
            self._buckets[name] = (left, now)
            return (1 - left) / self.rate_per_s


def authenticate(headers: Mapping[str, str], store: TokenStore, limiter: RateLimiter,
                 roles: Collection[Role] | None = None) -> Token:  # fmt: skip
    """The request's token, within its rate and (when `roles` is given) of one of those roles."""
    if not store.tokens():
        raise ApiError(401, "no_tokens", "no API token exists yet; create one with `ocrd token add NAME --role ROLE`",
                       headers={"WWW-Authenticate": _CHALLENGE})  # fmt: skip
    secret = presented_token(headers)
    if secret is None:
        raise ApiError(401, "token_missing", "send a token as `Authorization: Bearer TOKEN` or `X-API-Token: TOKEN`",
                       headers={"WWW-Authenticate": _CHALLENGE})  # fmt: skip
    token = store.lookup(secret)
    if token is None:
        raise ApiError(401, "token_invalid", "the token is not known (revoked, or mistyped)",
                       headers={"WWW-Authenticate": _CHALLENGE + ', error="invalid_token"'})  # fmt: skip
    wait_s = limiter.take(token.name)
    if wait_s > 0:
        raise ApiError(429, "rate_limited", f"more than {limiter.rate_per_s:g} requests per second for this token",
                       headers={"Retry-After": str(max(1, math.ceil(wait_s)))})  # fmt: skip
    if roles is not None and token.role not in roles:
        allowed = " or ".join(sorted(str(r) for r in roles))
        raise ApiError(403, "forbidden_role", f"this needs a token of role {allowed}; this one is {token.role}")
    return token
