"""Why an input was refused: one ``FieldError`` per field, gathered in a ``HygieneError``
that the HTTP edge turns into problem+json naming each field.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# ---------------------------------------------------------------------------------------
# Errors


@dataclass(frozen=True)
class FieldError:
    """One refused input field; ``field`` is a dotted path such as ``contact.email``."""

    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


class HygieneError(ValueError):
    """Input refused; carries every field that was wrong, not just the first."""

    def __init__(self, errors: Sequence[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = list(errors)
