"""Error types shared by every service, and their RFC 9457 problem+json form."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class ConcurrencyError(Exception):
    """Another writer appended to the stream first (UNIQUE (lead_id, stream_version))."""

    def __init__(self, lead_id: object, expected_version: int | None) -> None:
        super().__init__(f"stream {lead_id} moved past expected version {expected_version}")
        self.lead_id = lead_id
        self.expected_version = expected_version


class UnknownLead(Exception):
    def __init__(self, lead_id: object) -> None:
        super().__init__(f"unknown lead {lead_id}")
        self.lead_id = lead_id


class DecodeError(Exception):
    """A record that cannot be turned into an event: the consumer dead-letters it."""


class UnknownEventType(DecodeError):
    def __init__(self, event_type: str, schema_version: int) -> None:
        super().__init__(f"unknown event type {event_type!r} version {schema_version}")
        self.event_type = event_type
        self.schema_version = schema_version


class DatabaseError(Exception):
    """What Postgres (or the way to it) refused, in the kernel's own terms: service code
    catches these, never a driver's exceptions (``leadflow.events.sql`` translates them).

    ``sqlstate`` is Postgres' five-character code (empty for a client-side refusal);
    ``constraint`` names the violated constraint where there is one."""

    def __init__(self, message: str, *, sqlstate: str = "", constraint: str | None = None):
        super().__init__(message)
        self.sqlstate = sqlstate
        self.constraint = constraint


class UniqueViolation(DatabaseError):
    """A row with that key exists (23505): usually "already done", e.g. a replayed command."""


class ForeignKeyViolation(DatabaseError):
    """A referenced row does not exist, or a referencing one still does (23503)."""


class CheckViolation(DatabaseError):
    """A CHECK or NOT NULL constraint refused the row (23514, 23502)."""


class InvalidData(DatabaseError):
    """A value the database cannot take (SQLSTATE class 22: text it cannot store, a number
    out of a column's range) or the driver cannot encode: the input is bad, retrying
    changes nothing (APIs answer 422, consumers dead-letter)."""


class SerializationFailure(DatabaseError):
    """A concurrent transaction won (40001 serialization failure, 40P01 deadlock):
    transient, the whole transaction is retried."""


class DatabaseUnavailable(DatabaseError):
    """The connection was lost or the server is going away or not there yet: transient
    (consumers retry the batch, APIs answer 503 + Retry-After). Nothing was committed."""


class Problem(Exception):
    """An HTTP error rendered as ``application/problem+json`` (RFC 9457).

    ``errors`` lists field-level problems as ``{"field": "contact.email", "message": "..."}``
    so a form or integration can point at exactly what was wrong.
    """

    def __init__(
        self,
        status: int,
        title: str,
        detail: str = "",
        *,
        errors: list[dict[str, Any]] | None = None,
        type: str = "about:blank",
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{status} {title}: {detail}")
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = errors or []
        self.type = type
        self.headers = headers or {}
        self.extra = extra or {}

    @classmethod
    def invalid_fields(
        cls, errors: list[dict[str, Any]], title: str = "Invalid request"
    ) -> Problem:
        """422 naming every bad field; ``errors`` as in ``Problem.errors``."""
        fields = ", ".join(str(e["field"]) for e in errors)
        return cls(422, title, f"invalid fields: {fields}", errors=errors)

    def body(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.type, "title": self.title, "status": self.status}
        if self.detail:
            body["detail"] = self.detail
        if instance:
            body["instance"] = instance
        if self.errors:
            body["errors"] = self.errors
        body.update(self.extra)
        return body


class CommandRefused(Exception):
    """Why a command (an API action, decided purely) cannot happen, as the API answers it:
    the status, a title, the detail, the fields to blame, extra members of the problem body
    and response headers. Pure decisions raise it without knowing HTTP; the route turns it
    into problem+json with ``problem()``. One type for every service's commands."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str = "",
        errors: Sequence[Mapping[str, str]] = (),
        *,
        extra: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = [dict(e) for e in errors]
        self.extra = dict(extra or {})
        self.headers = dict(headers or {})

    @classmethod
    def invalid(cls, field: str, message: str, detail: str | None = None) -> CommandRefused:
        """422 naming ``field`` (the request says something that cannot be)."""
        return cls(
            422,
            "Invalid request",
            detail or f"invalid fields: {field}",
            errors=[{"field": field, "message": message}],
        )

    @classmethod
    def missing(cls, what: str, ident: str) -> CommandRefused:
        """404: the command names a ``what`` that does not exist."""
        return cls(404, "Not found", f"no {what} {ident!r}")

    def problem(self) -> Problem:
        """The refusal as the problem+json the API answers."""
        return Problem(
            self.status,
            self.title,
            self.detail,
            errors=self.errors or None,
            extra=self.extra or None,
            headers=self.headers or None,
        )
