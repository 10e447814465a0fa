"""An engagement activity as scoring counts it, whatever door built it (an event, a stored
row, a simulate sample).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from leadflow.events.catalogue.activities import canonical_activity_type


def normalise_activity_type(value: str) -> str:
    """The catalogue's name for a type: ``"Email Opened"``, ``"email-opened"`` and the alias
    ``email_opened`` are all ``email_open`` (``leadflow.events.catalogue.activities``)."""
    return canonical_activity_type(value)


# An activity property: text, a number (seconds on site, a video's percent watched) or a flag.
PropertyValue = bool | int | float | str


@dataclass(frozen=True)
class Activity:
    activity_type: str
    occurred_at: datetime
    url: str | None = None
    content_id: str | None = None
    campaign: str | None = None
    properties: Mapping[str, PropertyValue] = field(default_factory=dict)
    activity_id: str | None = None

    def __post_init__(self) -> None:
        # Whatever door built it (an event, a stored row, a sample), an activity carries the
        # catalogue's canonical type, the one rules are matched on.
        object.__setattr__(self, "activity_type", normalise_activity_type(self.activity_type))
