"""The one vocabulary of engagement activity types, shared by intake and scoring.

Intake accepts an activity only if its type is here (by name or alias) and records it under
its canonical name; scoring refuses to publish a model whose engagement rule names a type
that is not here, because nobody could ever send it and the rule would silently never
score. Before this catalogue intake accepted ten types and the built-in model scored some
thirty others, so a demo request could never score.

Names are compared normalised (``"Email Opened"``, ``"email-opened"`` and ``email_opened``
are one type) and aliases resolve to their canonical name (``webinar_attendance`` and
``olark_chat_conversation`` are how other systems name ``webinar_attended`` and ``chat``).
Adding a type is a change to this module (additive, like the event catalogue); renaming one
keeps the old name as an alias so stored events and published models keep their meaning.

``door`` says how a type reaches the platform: ``activities`` through intake's
``POST /v1/activities``; ``inquiry`` is recorded by scoring for every inquiry intake captures
(API, web form, badge scan, import), so it is not accepted as a loose activity.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

Door = Literal["activities", "inquiry"]


@functools.lru_cache(maxsize=4096)
def normalise_activity_type(value: str) -> str:
    """``"Email Opened"`` and ``"email-opened"`` are the same spelling: ``email_opened``."""
    return re.sub(r"[^a-z0-9]+", "_", value.strip().lower()).strip("_")


@dataclass(frozen=True)
class ActivityType:
    name: str
    description: str
    aliases: tuple[str, ...] = ()
    door: Door = "activities"
    # Properties with a documented meaning (others are kept as sent).
    properties: Mapping[str, str] = field(default_factory=dict)


ACTIVITY_TYPES: tuple[ActivityType, ...] = (
    ActivityType("inquiry", "Raised a hand: any inquiry intake captured (API, web form, "
                 "badge scan, import row).", door="inquiry",
                 properties={"capture_method": "api, web_form, badge_scan or import",
                             "rating": "hot, warm or cold (badge scans)"}),
    ActivityType("form_submitted", "Submitted a form that is not itself an inquiry "
                 "(newsletter, gated content).",
                 aliases=("form_submitted_on_website", "form_submission", "form_fill")),
    ActivityType("form_view", "Saw a form without submitting it."),
    ActivityType("demo_request", "Asked for a demo.",
                 aliases=("demo_requested", "request_demo", "demo")),
    ActivityType("contact_sales", "Asked to talk to sales.",
                 aliases=("contact_sales_request", "contact_us")),
    ActivityType("trial_signup", "Started a free trial.",
                 aliases=("trial_started", "free_trial", "trial")),
    ActivityType("page_view", "Viewed a page of the website (`url`).",
                 aliases=("page_visited_on_website", "pageview", "page_visit", "visit")),
    ActivityType("time_on_site", "A website session; `seconds` spent on the site.",
                 aliases=("site_visit", "session", "website_session"),
                 properties={"seconds": "number of seconds on the site"}),
    ActivityType("content_download", "Downloaded content (`content_id`).",
                 aliases=("whitepaper_download", "download", "ebook_download")),
    ActivityType("video_view", "Watched a video.", aliases=("video_watched",),
                 properties={"percent": "how much of it was watched, 0-100"}),
    ActivityType("webinar_registered", "Registered for a webinar.",
                 aliases=("webinar_registration", "webinar_signup")),
    ActivityType("webinar_attended", "Attended a webinar.",
                 aliases=("webinar_attendance", "webinar_attendee")),
    ActivityType("event_visit", "Visited a trade show or event (not a badge scan).",
                 aliases=("event_attended", "event_attendance", "booth_visit")),
    ActivityType("email_open", "Opened a marketing e-mail.", aliases=("email_opened",)),
    ActivityType("email_click", "Clicked a link in a marketing e-mail.",
                 aliases=("email_clicked", "email_link_clicked")),
    ActivityType("email_bounced", "A marketing e-mail to the lead bounced.",
                 aliases=("email_bounce", "bounced")),
    ActivityType("unsubscribed", "Unsubscribed from marketing e-mail.",
                 aliases=("unsubscribe", "email_unsubscribed")),
    ActivityType("chat", "Chatted with us on the website.",
                 aliases=("olark_chat_conversation", "chat_conversation", "live_chat")),
    ActivityType("phone_conversation", "Had a phone conversation with us.",
                 aliases=("had_a_phone_conversation", "phone_call", "call")),
    ActivityType("sms_sent", "Exchanged text messages with us.", aliases=("sms",)),
)  # fmt: skip


class ActivityCatalogue:
    """Canonical names and aliases, normalised, resolved to one ``ActivityType``."""

    def __init__(self, types: Iterable[ActivityType]) -> None:
        self.types: tuple[ActivityType, ...] = tuple(types)
        self._by_name: dict[str, ActivityType] = {}
        for kind in self.types:
            for spelling in (kind.name, *kind.aliases):
                key = normalise_activity_type(spelling)
                other = self._by_name.get(key)
                if other is not None and other is not kind:
                    raise ValueError(f"{spelling!r} names both {other.name} and {kind.name}")
                self._by_name[key] = kind

    def get(self, value: str) -> ActivityType | None:
        """The type ``value`` names (canonical name or alias, any spelling), if any."""
        return self._by_name.get(normalise_activity_type(value))

    def canonical(self, value: str) -> str:
        """The canonical name of a known type; an unknown one normalised (events stored
        before a type was catalogued keep their meaning to rules that name them)."""
        kind = self.get(value)
        return kind.name if kind is not None else normalise_activity_type(value)

    def names(self, door: Door | None = None) -> list[str]:
        """Canonical names (of one door, or all), sorted."""
        return sorted(k.name for k in self.types if door is None or k.door == door)


CATALOGUE = ActivityCatalogue(ACTIVITY_TYPES)


@functools.lru_cache(maxsize=4096)
def canonical_activity_type(value: str) -> str:
    """``CATALOGUE.canonical``: what intake records and scoring matches on."""
    return CATALOGUE.canonical(value)
