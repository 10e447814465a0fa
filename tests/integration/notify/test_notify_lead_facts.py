"""Notify writes what a consumer batch learnt of its leads (contacts, consent, scores) with a
statement per kind at the batch's end, not one per event. The events of one lead still land
in their order: a consent change after the capture in the same batch wins, a profile update
adds to the contact, the last score is the one kept, and an erasure after them leaves
nothing personal behind."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from leadflow.events.catalogue.intake import ConsentChanged, Contact, LeadErased, LeadProfileUpdated
from leadflow.notify import store
from leadflow.testing import app_client, produce_events, wait_until
from tests.integration.notify.helpers import captured, envelope, kit_of, notify_app, qualified

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


async def _row(app: Any, lead: uuid.UUID) -> Any:
    async with kit_of(app).connect() as conn:
        return await store.get_lead(conn, lead)


async def test_a_batch_of_one_leads_facts_lands_in_event_order(
    settings_for: Callable[..., Any], isolation: Any, kafka_bootstrap: str
) -> None:
    kept, erased = uuid.uuid4(), uuid.uuid4()
    app = notify_app(settings_for, "smtp://127.0.0.1:1")
    async with app_client(app):
        newer = Contact(email="ada@example.com", phone="+44 20 7946 0999", title="CEO")
        await produce_events(
            kafka_bootstrap,
            isolation.topic("intake"),
            [
                captured(kept, consent=True),
                envelope(ConsentChanged(marketing_opt_in=False), kept),
                envelope(LeadProfileUpdated(changed_fields=["phone"], contact=newer), kept),
                captured(erased, consent=True),
                envelope(LeadErased(reason="request"), erased),
            ],
        )
        first = qualified(kept)
        await produce_events(kafka_bootstrap, isolation.topic("scoring"), [first])

        async def settled() -> Any:
            row = await _row(app, kept)
            gone = await _row(app, erased)
            ready = row is not None and row.scoring is not None and gone is not None
            return (row, gone) if ready and gone.erased else None

        row, gone = await wait_until(settled, timeout=60, message="notify saw both leads")
        assert row.consent is False and row.opted_out is True  # the later change won
        assert row.contact["phone"] == "+44 20 7946 0999" and row.contact["title"] == "CEO"
        assert row.contact["company"] == "Analytical Engines Ltd"  # the capture's, kept
        assert row.scoring["grade"] == "A" and row.scoring["fit"] == 82
        assert gone.contact is None
