"""Error types shared by every service, and their RFC 9457 problem+json form."""

from __future__ import annotations

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
