"""One error hierarchy, mapped once to GraphQL extension codes and REST envelopes."""

from __future__ import annotations


class ChainfolioError(Exception):
    """Base of every error a user may see; `code` and `status` drive both APIs."""

    code = "INTERNAL"
    status = 500

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class InternalError(ChainfolioError):
    """All a client learns of an unexpected fault, on every transport: the message "internal
    error", the code INTERNAL and the request id; the details go to the server log only."""

    def __init__(self) -> None:
        super().__init__("internal error")


class InvalidInput(ChainfolioError):
    """The request is malformed: bad address, period, interval, token, weights."""

    code = "BAD_REQUEST"
    status = 400


class Unprocessable(ChainfolioError):
    """The request is well formed but cannot be applied (e.g. duplicate wallet)."""

    code = "UNPROCESSABLE"
    status = 422


class Unauthorized(ChainfolioError):
    """No, expired or invalid credentials."""

    code = "UNAUTHENTICATED"
    status = 401


class Forbidden(ChainfolioError):
    """Authenticated, but the resource belongs to someone else."""

    code = "FORBIDDEN"
    status = 403


class NotFound(ChainfolioError):
    """The named resource does not exist for this user."""

    code = "NOT_FOUND"
    status = 404


class PayloadTooLarge(ChainfolioError):
    """The request body (or websocket message) is larger than the configured cap."""

    code = "PAYLOAD_TOO_LARGE"
    status = 413


class RateLimited(ChainfolioError):
    """Too many requests; `retry_after` seconds until the next is allowed."""

    code = "RATE_LIMITED"
    status = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SourceUnavailable(ChainfolioError):
    """A chain, price source or the database cannot be reached right now."""

    code = "SERVICE_UNAVAILABLE"
    status = 503


class InsufficientData(ChainfolioError):
    """Not enough history to compute the asked metric (never NaN in JSON)."""

    code = "INSUFFICIENT_DATA"
    status = 422
