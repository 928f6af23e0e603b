"""Errors a caller is told about: a stable code (`ErrorCode`), a message meant for a human, and
the rule of law that refused, when one did."""

from __future__ import annotations

from libs.contracts.rpc import ErrorCode


class DomainError(Exception):
    code: ErrorCode = ErrorCode.REFUSED

    def __init__(
        self, message: str, *, code: ErrorCode | None = None, rule: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.rule = rule
        if code is not None:
            self.code = code


class InvalidInput(DomainError):
    code = ErrorCode.INVALID_INPUT


class NotFound(DomainError):
    code = ErrorCode.NOT_FOUND


class Unauthenticated(DomainError):
    code = ErrorCode.UNAUTHENTICATED


class Forbidden(DomainError):
    code = ErrorCode.FORBIDDEN


class Conflict(DomainError):
    code = ErrorCode.CONFLICT


class Unavailable(DomainError):
    code = ErrorCode.UNAVAILABLE
