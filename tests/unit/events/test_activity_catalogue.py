"""The shared activity vocabulary: names, aliases and spellings resolve to one type."""

from __future__ import annotations

import pytest

from leadflow.events.catalogue.activities import (
    CATALOGUE,
    ActivityCatalogue,
    ActivityType,
    canonical_activity_type,
)


def test_names_aliases_and_spellings_resolve_to_the_canonical_type() -> None:
    assert canonical_activity_type("Webinar Attendance") == "webinar_attended"
    assert canonical_activity_type("olark-chat-conversation") == "chat"
    assert canonical_activity_type("DEMO_REQUEST") == "demo_request"
    assert canonical_activity_type("Teleport") == "teleport"  # unknown: normalised, kept
    assert CATALOGUE.get("teleport") is None


def test_inquiry_arrives_with_inquiries_not_as_a_loose_activity() -> None:
    assert "inquiry" not in CATALOGUE.names("activities")
    assert CATALOGUE.names("inquiry") == ["inquiry"]
    assert len(CATALOGUE.names()) == len(CATALOGUE.types)


def test_one_spelling_naming_two_types_is_refused() -> None:
    with pytest.raises(ValueError, match="names both"):
        ActivityCatalogue(
            [ActivityType("a", "one", aliases=("x",)), ActivityType("b", "two", aliases=("X",))]
        )
