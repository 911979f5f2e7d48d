"""Herald's error tree: every expected failure, with the HTTP status it means.

    HeraldError(code, message, status_code, field)
    ├── ValidationError      422  bad input: names the field and why
    ├── AuthenticationError  401  missing, expired or forged credentials
    ├── ForbiddenError       403  the caller's role in the workspace does not allow this
    ├── NotFoundError        404  no such resource for this user (another user's is "not found" too)
    ├── ConflictError        409  the resource's state forbids the change (e.g. editing a published post)
    ├── ServiceUnavailable   503  Herald is not configured for this (e.g. no CRON_SECRET)
    └── StoreError           500  the store failed in a way the caller cannot fix
"""

from __future__ import annotations


class HeraldError(Exception):
    """Base error; rendered as ``{"error": {"code", "message", "field"?}}``."""

    status_code = 500
    code = "internal_error"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None,
                 details: dict | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.field = field
        self.details = details or {}

    def to_dict(self) -> dict:
        body = {"code": self.code, "message": self.message}
        if self.field:
            body["field"] = self.field
        return {**body, **self.details}


class ValidationError(HeraldError):
    """The request is well-formed JSON but a value is not acceptable."""

    status_code = 422
    code = "invalid"


class AuthenticationError(HeraldError):
    """The caller's credential is missing or not valid."""

    status_code = 401
    code = "unauthorized"


class ForbiddenError(HeraldError):
    """The caller is a member of the workspace, but their role does not allow this; the message names
    the role it needs."""

    status_code = 403
    code = "forbidden"


class NotFoundError(HeraldError):
    """The resource does not exist or belongs to someone else."""

    status_code = 404
    code = "not_found"


class ConflictError(HeraldError):
    """The resource's current state does not allow the change."""

    status_code = 409
    code = "conflict"


class ServiceUnavailable(HeraldError):
    """A setting this endpoint needs is missing."""

    status_code = 503
    code = "not_configured"


class StoreError(HeraldError):
    """The store failed unexpectedly."""

    status_code = 500
    code = "store_error"
