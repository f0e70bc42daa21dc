"""Rate limits in Redis: per API key, per user, per device and per IP, set by the plan.

Fixed one-minute windows (INCR on a key that expires): one round trip per request,
exact under concurrency, shared by every web replica. Cache keys carry the tenant.
Identity of anonymous callers is the client IP as DRF derives it, trusting
`X-Forwarded-For` only up to NUM_PROXIES hops (TRUSTED_PROXY_COUNT), so a spoofed
header cannot mint fresh buckets.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from typing import Any

from django.conf import settings
from django.core.cache import cache
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle


class _WindowThrottle(BaseThrottle, ABC):
    scope = "api"

    @abstractmethod
    def identity_and_limit(self, request: Request) -> tuple[str, int]:
        """The bucket's identity and its limit per window."""

    def allow_request(self, request: Request, view: Any) -> bool:
        ident, limit = self.identity_and_limit(request)
        window_seconds = settings.RATE_LIMIT_WINDOW_SECONDS
        now = time.time()
        window = int(now // window_seconds)
        key = f"ratelimit:{self.scope}:{ident}:{window}"
        cache.add(key, 0, timeout=window_seconds + 5)
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.add(key, 1, timeout=window_seconds + 5)
            count = 1
        reset = int((window + 1) * window_seconds - now) + 1
        previous = getattr(request._request, "d2r_ratelimit", None)
        remaining = max(0, limit - count)
        if previous is None or remaining < previous[1]:
            request._request.d2r_ratelimit = (limit, remaining, reset)
        self._wait = float(reset)
        return count <= limit

    def wait(self) -> float | None:
        return self._wait


class PlanRateThrottle(_WindowThrottle):
    """Every API call: the workspace plan's requests per minute, per caller."""

    scope = "api"

    def identity_and_limit(self, request: Request) -> tuple[str, int]:
        tenant = getattr(request._request, "tenant", None)
        plan = getattr(tenant, "plan", None)
        limit = plan.api_requests_per_minute if plan else settings.API_DEFAULT_RATE_PER_MINUTE
        principal = request.auth
        if getattr(principal, "api_key_id", None):
            return f"key:{principal.api_key_id}", limit
        if getattr(principal, "device_id", None):
            return f"device:{principal.device_id}", limit
        if request.user and request.user.is_authenticated and request.user.pk:
            return f"user:{request.user.pk}", limit
        return f"ip:{self.get_ident(request)}", settings.API_ANON_RATE_PER_MINUTE


class AuthRateThrottle(_WindowThrottle):
    """Login and token endpoints: a strict limit per client IP."""

    scope = "auth"

    def identity_and_limit(self, request: Request) -> tuple[str, int]:
        return f"ip:{self.get_ident(request)}", settings.AUTH_RATE_PER_MINUTE


class RateLimitHeadersMiddleware:
    """`RateLimit-Limit/Remaining/Reset` on every rate-limited response."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        response = self.get_response(request)
        state = getattr(request, "d2r_ratelimit", None)
        if state is not None:
            limit, remaining, reset = state
            response["RateLimit-Limit"] = str(limit)
            response["RateLimit-Remaining"] = str(remaining)
            response["RateLimit-Reset"] = str(reset)
            if response.status_code == 429:
                response["Retry-After"] = str(reset)
        return response
