"""Domain errors: a value with a contract code.

Services raise them; the socket edge turns them into an error ack and the web
edge into a status code, each in one place.
"""
from __future__ import annotations


class DomainError(Exception):
    code = "internal"
    http_status = 500

    def __init__(self, message: str, *, field: str | None = None,
                 retry_after: float | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.retry_after = retry_after

    def to_ack(self) -> dict:
        error: dict = {"code": self.code, "message": self.message}
        if self.field is not None:
            error["field"] = self.field
        if self.retry_after is not None:
            error["retry_after"] = self.retry_after
        return {"ok": False, "error": error}


class Unauthenticated(DomainError):
    code, http_status = "unauthenticated", 401


class Forbidden(DomainError):
    code, http_status = "forbidden", 403


class NotFound(DomainError):
    code, http_status = "not_found", 404


class Invalid(DomainError):
    code, http_status = "invalid", 400

    def __init__(self, message: str, *, field: str):
        super().__init__(message, field=field)


class TooLarge(DomainError):
    code, http_status = "too_large", 413


class RateLimited(DomainError):
    code, http_status = "rate_limited", 429

    def __init__(self, message: str, *, retry_after: float):
        super().__init__(message, retry_after=round(max(retry_after, 0.001), 3))


class Conflict(DomainError):
    code, http_status = "conflict", 409


class Internal(DomainError):
    code, http_status = "internal", 500
