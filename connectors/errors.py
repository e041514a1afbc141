"""Typed errors shared by the Xero and Zoho CRM clients.

Every error keeps the API's own message (``message``) and, where there is one, its code, so a
reject can quote what Xero or Zoho said. ``outcome_unknown`` marks failures after which a write
may or may not have been committed (dropped connection, truncated answer): the caller must settle
it by lookup, never by blindly creating again.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A call to Xero or Zoho CRM failed."""

    retryable: bool = False
    outcome_unknown: bool = False

    def __init__(self, system: str, message: str, *, status: int | None = None, code: str | None = None,
                 method: str | None = None, url: str | None = None, body: Any = None) -> None:
        super().__init__(f"{system}: {message}" + (f" (HTTP {status})" if status else ""))
        self.system = system
        self.message = message
        self.status = status
        self.code = code
        self.method = method
        self.url = url
        self.body = body


class AuthError(ApiError):
    """401: the access token was refused (expired, revoked, unknown)."""


class TokenRefreshError(ApiError):
    """The token endpoint refused to mint a token (invalid_grant, Access Denied, ...)."""

    def __init__(self, system: str, message: str, *, permanent: bool, **kw: Any) -> None:
        super().__init__(system, message, **kw)
        #: True when only a new consent fixes it (the refresh token is dead).
        self.permanent = permanent


class ForbiddenError(ApiError):
    """403: wrong tenant, missing scope or no permission."""


class NotFoundError(ApiError):
    """404: no such resource (or, on Xero, too many IDs in a filter)."""


class BadRequestError(ApiError):
    """400 and other 4xx: the request itself is wrong; retrying the same request won't help."""


class ValidationError(BadRequestError):
    """Xero's ValidationException: ``elements`` holds each element's ValidationErrors."""

    def __init__(self, system: str, message: str, *, elements: list[dict[str, Any]] | None = None,
                 **kw: Any) -> None:
        super().__init__(system, message, **kw)
        self.elements = elements or []


class RateLimitError(ApiError):
    """429: a limit was hit. ``retry_after`` seconds (when told) and which limit (``problem``)."""

    retryable = True

    def __init__(self, system: str, message: str, *, retry_after: float | None = None,
                 problem: str | None = None, **kw: Any) -> None:
        super().__init__(system, message, **kw)
        self.retry_after = retry_after
        self.problem = problem


class BudgetExhausted(ApiError):
    """The day's budget (Xero calls, Zoho credits) is spent down to the reserve: stop cleanly."""


class ServerError(ApiError):
    """5xx: the service failed; retried with backoff."""

    retryable = True


class TransportError(ApiError):
    """The connection failed or timed out; for a write, the outcome is unknown."""

    retryable = True
    outcome_unknown = True


class BadResponseError(ApiError):
    """An answer we cannot read: HTML error page, truncated JSON, wrong content type, empty body."""

    retryable = True
    outcome_unknown = True
