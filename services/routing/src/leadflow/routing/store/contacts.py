"""Contact cards learnt from intake's events: a batch's cards and erasures in one
statement.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from leadflow.events.db import json_text
from leadflow.events.sql import Tx


@dataclass
class ContactWrites:
    """A batch's contact cards, the last one per lead winning (delivery order), and its
    erasures; ``write_contacts`` applies them with one statement."""

    cards: dict[uuid.UUID, dict[str, Any]] = field(default_factory=dict)
    erased: dict[uuid.UUID, datetime] = field(default_factory=dict)

    def card(self, lead_id: uuid.UUID, card: dict[str, Any]) -> None:
        if lead_id not in self.erased:
            self.cards[lead_id] = card

    def erase(self, lead_id: uuid.UUID, at: datetime) -> None:
        self.cards.pop(lead_id, None)
        self.erased[lead_id] = at


_WRITE_CONTACTS = """
    INSERT INTO leads (lead_id, contact, contact_erased_at)
    SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:cards AS jsonb[]),
                         CAST(:erased AS timestamptz[]))
    ORDER BY 1
    ON CONFLICT (lead_id) DO UPDATE SET
        contact = CASE
            WHEN EXCLUDED.contact_erased_at IS NOT NULL OR leads.contact_erased_at IS NOT NULL
            THEN NULL ELSE EXCLUDED.contact END,
        contact_erased_at = COALESCE(leads.contact_erased_at, EXCLUDED.contact_erased_at),
        updated_at = now()
    """


async def write_contacts(tx: Tx, writes: ContactWrites) -> None:
    """Upsert the batch's cards and erasures (a lead routing has not seen yet gets its row
    now); an erased lead's card is never written back by a later profile event."""
    ids = sorted({*writes.cards, *writes.erased})
    if not ids:
        return
    await tx.execute(
        _WRITE_CONTACTS,
        ids=ids,
        cards=[json_text(writes.cards[i]) if i in writes.cards else None for i in ids],
        erased=[writes.erased.get(i) for i in ids],
    )
