"""A lead row's profile is validated when a decision first reads it, not when the row is
loaded: sales feedback on a qualified lead never reads it, a capture replaces it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from unittest import mock

from leadflow.events.batch import decide_each
from leadflow.events.catalogue.routing import LeadAccepted
from leadflow.events.envelope import Envelope
from leadflow.scoring.builtin import default_model, default_tracks
from leadflow.scoring.domain import LeadProfile
from leadflow.scoring.state import LeadRow, ScoredLead, ScoringContext
from tests.unit.scoring.test_decisions import HANDLER

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
STORED = {"company": "Acme", "title": "CTO", "company_size": 1000, "answers": {"budget": "80k"}}


def stored_row(**columns: Any) -> dict[str, Any]:
    """A ``leads`` row as the store reads it (the profile is the decoded JSON object)."""
    row = LeadRow(uuid.uuid4(), LeadProfile())
    data: dict[str, Any] = {k: v for k, v in row.__dict__.items() if not k.startswith("_")}
    return data | {"profile": STORED} | columns


def test_a_loaded_profile_reads_as_the_validated_one() -> None:
    lead = LeadRow.from_row(stored_row())
    assert lead.profile == LeadProfile.model_validate(STORED)
    assert lead.copy().profile is lead.profile  # validated once, shared by copies
    assert LeadRow.from_row(stored_row(profile=None)).profile == LeadProfile()


def test_sales_feedback_on_a_frozen_lead_never_validates_its_profile() -> None:
    row = stored_row(stage="mql", qualified=True, snapshot={"fit": 1.0})
    ctx = ScoringContext(now=T0, model=default_model(), tracks=tuple(default_tracks()))
    with mock.patch.object(LeadProfile, "model_validate", side_effect=AssertionError("read")):
        lead = LeadRow.from_row(row)
        accepted = Envelope.new(LeadAccepted(rep_id="r"), lead_id=lead.lead_id, occurred_at=T0)
        out = decide_each(HANDLER, {lead.lead_id: ScoredLead(lead)}, [accepted], ctx)
    after = out.states[lead.lead_id].row
    assert after.stage == "sal" and after.dirty
    assert after.profile.company == "Acme"  # read now: validated now
