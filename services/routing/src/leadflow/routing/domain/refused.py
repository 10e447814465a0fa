"""Why a command (an API action) cannot happen, as the API answers it. Pure: the routes map
it to problem+json (``api.common.refused``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class CommandRefused(Exception):
    """Why a command cannot happen, as the API answers it: the status, a title, the detail,
    the fields to blame and any extra members of the problem body."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        errors: Sequence[Mapping[str, str]] = (),
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = [dict(e) for e in errors]
        self.extra = dict(extra or {})

    @classmethod
    def invalid(cls, field: str, message: str, detail: str | None = None) -> CommandRefused:
        """422 naming ``field`` (the request says something that cannot be)."""
        return cls(
            422,
            "Invalid request",
            detail or f"invalid fields: {field}",
            errors=[{"field": field, "message": message}],
        )
