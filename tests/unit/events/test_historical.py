"""The ``historical`` flag: imported history is recorded by everyone and acted on by nobody."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from leadflow.events.catalogue.intake import (
    HistoricalDealWon,
    LeadCaptured,
    is_historical,
)
from leadflow.events.envelope import Envelope
from leadflow.events.uow import skip_historical


def _captured(historical: bool) -> Envelope:
    payload = LeadCaptured(
        inquiry_id=uuid.uuid4(), capture_method="import", contact={}, historical=historical
    )
    return Envelope.new(payload, lead_id=uuid.uuid4())


def test_history_events_are_always_flagged_and_captures_only_when_imported_as_history() -> None:
    assert is_historical(HistoricalDealWon(amount=Decimal(1)))
    assert is_historical(_captured(True).payload)
    assert not is_historical(_captured(False).payload)
    schema = LeadCaptured.model_json_schema()["properties"]["historical"]
    assert schema["default"] is False and "no SLA clock" in schema["description"]


async def test_acting_services_skip_historical_events_and_handle_live_ones() -> None:
    seen: list[Envelope] = []

    async def handler(envelope: Envelope, uow: Any) -> None:
        seen.append(envelope)

    guarded = skip_historical({LeadCaptured: handler})[LeadCaptured]
    live, history = _captured(False), _captured(True)
    await guarded(history, None)  # type: ignore[arg-type]
    await guarded(live, None)  # type: ignore[arg-type]
    assert seen == [live]
