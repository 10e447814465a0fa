"""Scoring's decisions without a database: the batch handler's pure ``decide`` (through the
kernel's pure fold ``decide_each``) and the timer decisions, with plain values and the
built-in model and tracks as shipped."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from leadflow.events.batch import Outcome, decide_each
from leadflow.events.catalogue.intake import (
    AccountMatch,
    ActivityRecorded,
    ConsentChanged,
    Contact,
    DoNotContactChanged,
    InquiryReceived,
    LeadCaptured,
    LeadsMerged,
    QualificationAnswers,
)
from leadflow.events.catalogue.routing import (
    CustomerChurned,
    DealLost,
    DealWon,
    LeadAccepted,
    LeadAssigned,
    LeadRecycled,
    LeadRejected,
)
from leadflow.events.clock import ManualClock
from leadflow.events.envelope import Envelope, EventPayload
from leadflow.scoring.batch import ScoringBatch
from leadflow.scoring.builtin import default_model, default_tracks
from leadflow.scoring.decisions.draft import nurture_key, reevaluate_key
from leadflow.scoring.decisions.events import decide, erased, merged_into
from leadflow.scoring.decisions.timers import nurture_touch, reevaluate
from leadflow.scoring.facts import live_score
from leadflow.scoring.state import ScoredLead, ScoringContext

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
HANDLER = ScoringBatch(ManualClock(T0))  # its decide is pure: the clock is never read there


def ctx_at(now: datetime = T0, **changes: Any) -> ScoringContext:
    return ScoringContext(now=now, model=default_model(), tracks=tuple(default_tracks()), **changes)


def captured(lead: uuid.UUID, title: str = "VP Marketing", **extra: Any) -> Envelope:
    """A well-fitting buyer (grade A) unless the title says otherwise."""
    payload = LeadCaptured(
        inquiry_id=uuid.uuid4(),
        capture_method="web_form",
        contact=Contact(email="a@acme.com", title=title, department="Marketing", company="Acme"),
        email_domain="acme.com",
        answers=QualificationAnswers(
            company_size="1000+", compelling_event="renewal", authority="yes", budget="80k"
        ),
        **extra,
    )
    return Envelope.new(payload, lead_id=lead, occurred_at=T0)


def on(lead: uuid.UUID, payload: EventPayload, at: datetime = T0) -> Envelope:
    return Envelope.new(payload, lead_id=lead, occurred_at=at)


def activity(lead: uuid.UUID, kind: str, key: str | None = None) -> Envelope:
    return on(lead, ActivityRecorded(activity_id=key or uuid.uuid4().hex, activity_type=kind))


def fold(
    events: list[Envelope], ctx: ScoringContext | None = None, state: ScoredLead | None = None
) -> tuple[Outcome[ScoredLead], list[list[str]]]:
    """Decide ``events`` of one lead in order; the event types each one appended."""
    lead = events[0].lead_id
    out = decide_each(HANDLER, {lead: state or ScoredLead.new(lead)}, events, ctx or ctx_at())
    return out, [[p.event_type for p in payloads] for _, payloads, _, _ in out.appends]


def ready(lead: uuid.UUID) -> list[Envelope]:
    return [captured(lead), activity(lead, "demo_request"), activity(lead, "webinar_attended")]


def test_a_sales_ready_lead_is_scored_qualified_once_and_frozen() -> None:
    lead = uuid.uuid4()
    out, appended = fold(ready(lead))
    assert appended == [["lead.scored", "lead.qualified"], ["lead.scored"], ["lead.scored"]]
    state = out.states[lead]
    assert state.row.qualified and state.row.qualified_at == T0
    assert state.row.snapshot is not None and state.row.snapshot_at == T0
    assert state.row.score is not None and state.row.score["matrix_cell"] == "A2"
    assert [a.activity_type for a in state.added] == ["inquiry", "demo_request", "webinar_attended"]
    assert list(out.schedule) == [reevaluate_key(lead)]
    # the caused-by chain: each event's decisions name it
    assert [c.event_type for _, _, c, _ in out.appends] == [e.event_type for e in ready(lead)]


def frozen_vs_fresh(lead: uuid.UUID, now: datetime) -> tuple[dict[str, Any], float, float]:
    """A demo request a day (less a second) before the capture at T0, decided at ``now``:
    the frozen snapshot, the score at T0 computed afresh, and the published engagement."""
    demo_at = T0 - timedelta(days=1) + timedelta(seconds=1)
    demo = on(lead, ActivityRecorded(activity_id="demo-1", activity_type="demo_request"), demo_at)
    out, appended = fold([demo, captured(lead)], ctx_at(now))
    assert "lead.qualified" in appended[1]
    state = out.states[lead]
    fresh = live_score(
        state.row.profile, state.activities, default_model(), T0, state.row.engagement_since
    )
    assert state.row.snapshot is not None and state.row.score is not None
    assert state.row.snapshot_at == T0
    return state.row.snapshot, fresh.engagement, float(state.row.score["engagement"])


def test_the_snapshot_is_the_score_at_the_event_when_the_batch_is_a_day_later() -> None:
    # decided two seconds after the capture, the demo is a day old: the published score has
    # it decayed, the snapshot (as of the capture) does not
    snap, fresh, published = frozen_vs_fresh(uuid.uuid4(), T0 + timedelta(seconds=2))
    assert snap["engagement"] == fresh
    assert published < fresh


def test_the_snapshot_reuses_the_score_when_no_activity_aged_in_between() -> None:
    # decided half a second after the capture: the demo is under a day old at both instants
    snap, fresh, published = frozen_vs_fresh(uuid.uuid4(), T0 + timedelta(milliseconds=500))
    assert snap["engagement"] == fresh == published


def test_a_redelivered_activity_counts_once() -> None:
    lead = uuid.uuid4()
    demo = activity(lead, "demo_request", key="demo-1")
    out, appended = fold([captured(lead), demo, demo])
    assert appended[2:] == []  # the second delivery moved nothing
    assert [a.activity_id for a in out.states[lead].added].count("demo-1") == 1


def test_deciding_leaves_the_given_state_untouched() -> None:
    lead = uuid.uuid4()
    start = ScoredLead.new(lead)
    decision = decide(start, captured(lead), ctx_at())
    assert decision.state is not None and decision.state is not start
    assert start.row.score is None and start.activities == [] and not start.row.dirty


def test_an_unready_lead_is_enrolled_in_nurture_with_its_first_touch() -> None:
    lead = uuid.uuid4()
    out, appended = fold([captured(lead, title="Marketing Manager")])
    assert appended == [["lead.scored", "nurture.enrolled"]]
    row = out.states[lead].row
    assert row.nurture_status == "active" and row.track_id is not None
    touch = out.schedule[nurture_key(lead)]
    assert touch.payload == {"track_id": row.track_id, "step": 0}
    assert touch.due_at == row.nurture_next_due_at


def test_sales_taking_a_nurtured_lead_pauses_nurture_and_freezes_the_snapshot() -> None:
    lead = uuid.uuid4()
    assigned_at = T0 + timedelta(hours=2)
    out, appended = fold(
        [
            captured(lead, title="Marketing Manager"),
            on(lead, LeadAssigned(assignee_kind="rep", rep_id="rep-1"), assigned_at),
        ],
        ctx_at(T0 + timedelta(hours=3)),
    )
    assert appended[1] == ["nurture.exited"]
    row = out.states[lead].row
    assert (row.nurture_status, row.with_sales) == ("paused", True)
    assert row.snapshot_at == assigned_at  # as of the event, not of when it was decided
    assert nurture_key(lead) in out.cancel


def test_a_rejection_is_an_outcome_and_the_paused_track_resumes() -> None:
    lead = uuid.uuid4()
    rejected_at = T0 + timedelta(days=1)
    rejected = on(lead, LeadRejected(reason_code="no_budget"), rejected_at)
    out, appended = fold(
        [
            captured(lead, title="Marketing Manager"),
            on(lead, LeadAssigned(assignee_kind="rep", rep_id="rep-1")),
            rejected,
        ],
        ctx_at(rejected_at),
    )
    assert appended[2][0] == "nurture.enrolled"
    state = out.states[lead]
    [record] = state.outcomes
    assert (record.outcome, record.reason_code, record.event_id) == (
        "rejected",
        "no_budget",
        rejected.event_id,
    )
    assert state.row.nurture_reason == "resumed" and state.row.engagement_since == rejected_at


def test_a_won_deal_makes_a_customer_and_stops_the_decay_timer() -> None:
    lead = uuid.uuid4()
    won_at = T0 + timedelta(days=30)
    out, _ = fold([*ready(lead), on(lead, DealWon(amount=Decimal("1000")), won_at)], ctx_at(won_at))
    state = out.states[lead]
    assert (state.row.status, state.row.outcome, state.row.reeval_at) == ("won", "won", None)
    assert [o.outcome for o in state.outcomes] == ["won"]
    assert reevaluate_key(lead) in out.cancel and reevaluate_key(lead) not in out.schedule


def test_do_not_contact_disqualifies_and_lifting_it_reinstates_and_requalifies() -> None:
    lead = uuid.uuid4()
    out, appended = fold(
        [
            *ready(lead),
            on(lead, DoNotContactChanged(do_not_contact=True, reason="asked")),
            on(lead, DoNotContactChanged(do_not_contact=False, reason="lifted")),
        ]
    )
    assert "lead.disqualified" in appended[3]
    assert appended[4][0] == "lead.reinstated" and "lead.qualified" in appended[4]
    row = out.states[lead].row
    assert not row.disqualified and row.qualified
    assert [o.outcome for o in out.states[lead].outcomes] == ["disqualified"]


def test_a_colleague_at_a_customer_account_opens_an_expansion() -> None:
    lead, customer = uuid.uuid4(), uuid.uuid4()
    account = AccountMatch(account_id="acc-1", domain="acme.com", name="Acme", registered=True)
    event = captured(lead, account=account)
    ctx = ctx_at(customers={"acc-1": frozenset({customer})})
    _, appended = fold([event], ctx)
    assert appended[0][0] == "expansion.opened"
    _, alone = fold([event], ctx_at())  # nobody of the account is a customer
    assert "expansion.opened" not in alone[0]


def test_the_decay_timer_cools_a_lead_below_the_bar() -> None:
    lead = uuid.uuid4()
    out, _ = fold(ready(lead))
    state = out.states[lead]
    later = state.row.reeval_at
    assert later is not None
    decision = reevaluate(state, ctx_at(later))
    assert decision.state is not None
    score = decision.state.row.score
    assert score is not None and score["engagement"] < 55.0


def test_a_nurture_touch_is_sent_once_and_a_stale_timer_decides_nothing() -> None:
    lead = uuid.uuid4()
    out, _ = fold([captured(lead, title="Marketing Manager")])
    state = out.states[lead]
    due = state.row.nurture_next_due_at
    assert due is not None
    sent = nurture_touch(state, ctx_at(due), state.row.track_id, 0, due)
    assert sent.events[0].event_type == "nurture.touch_due"
    assert sent.state is not None and sent.state.row.nurture_step == 1
    stale = nurture_touch(sent.state, ctx_at(due), state.row.track_id, 0, due)
    assert stale.state is None and not stale.events and not stale.schedule


def test_an_erased_lead_forgets_its_profile_and_activities() -> None:
    lead = uuid.uuid4()
    out, _ = fold([captured(lead, title="Marketing Manager")])
    decision = erased(out.states[lead])
    assert decision.state is not None
    row = decision.state.row
    assert (row.status, row.profile.company, decision.state.activities) == ("erased", None, [])
    assert [p.event_type for p in decision.events] == ["nurture.exited"]
    assert reevaluate_key(lead) in decision.cancel


def test_the_stage_moves_through_the_kernel_lifecycle_and_the_flags_follow_it() -> None:
    lead = uuid.uuid4()
    accepted = on(lead, LeadAccepted(rep_id="rep-1"))
    out, _ = fold([*ready(lead), accepted])
    row = out.states[lead].row
    assert (row.stage, row.qualified, row.with_sales, row.status) == ("sal", True, True, "open")
    later = T0 + timedelta(hours=1)  # engagement counts afresh from the recycling
    recycled = on(lead, LeadRecycled(reason_code="not_now"), later)
    out, _ = fold([recycled], ctx_at(later), out.states[lead])
    row = out.states[lead].row
    assert (row.stage, row.qualified, row.with_sales) == ("nurture", False, False)


def test_an_event_from_a_stage_scoring_did_not_see_puts_the_lead_where_its_producer_has_it() -> (
    None
):
    """Routing checked the move against its own lifecycle: a win reported for a lead
    scoring knows only as an MQL (it never saw the opportunity) still makes a customer."""
    lead = uuid.uuid4()
    out, _ = fold([*ready(lead), on(lead, DealWon(amount=Decimal("10")))])
    row = out.states[lead].row
    assert (row.stage, row.status, row.qualified) == ("won", "won", False)


def test_a_lost_expansion_leaves_a_customer_a_customer() -> None:
    lead = uuid.uuid4()
    won, _ = fold([*ready(lead), on(lead, DealWon(amount=Decimal("10")))])
    again = on(lead, InquiryReceived(inquiry_id=uuid.uuid4(), capture_method="web_form"))
    out, appended = fold([again], ctx_at(T0 + timedelta(days=1)), won.states[lead])
    assert appended[0][0] == "expansion.opened" and "lead.qualified" in appended[0]
    assert (out.states[lead].row.stage, out.states[lead].row.cycle) == ("mql", "expansion")
    lost, _ = fold([on(lead, DealLost(reason_code="budget"))], state=out.states[lead])
    row = lost.states[lead].row
    assert (row.stage, row.status, row.cycle) == ("customer", "won", "expansion")


def test_an_e_mail_opt_out_ends_nurture_and_an_opt_in_lets_the_lead_enrol_again() -> None:
    lead = uuid.uuid4()
    out, appended = fold(
        [
            captured(lead, title="Marketing Manager"),
            on(lead, ConsentChanged(marketing_opt_in=False, source="preference-center")),
        ]
    )
    assert appended[1] == ["nurture.exited"]
    row = out.states[lead].row
    assert (row.nurture_status, row.nurture_reason, row.qualified) == ("exited", "opted_out", False)
    out, appended = fold(
        [on(lead, ConsentChanged(marketing_opt_in=True, source="preference-center"))],
        state=out.states[lead],
    )
    assert appended == [["nurture.enrolled"]]


def test_a_merge_survivor_inherits_the_duplicate_s_mql_and_owner() -> None:
    survivor, duplicate = uuid.uuid4(), uuid.uuid4()
    qualified, _ = fold(
        [*ready(duplicate), on(duplicate, LeadAssigned(assignee_kind="rep", rep_id="r"))]
    )
    cold, _ = fold([captured(survivor, title="Marketing Manager")])
    merge = on(survivor, LeadsMerged(merged_lead_id=duplicate, match_reason="same_email"))
    decision = merged_into(cold.states[survivor], ctx_at(), merge, qualified.states[duplicate].row)
    assert decision.state is not None
    row = decision.state.row
    assert (row.stage, row.qualified, row.with_sales) == ("mql", True, True)
    assert "lead.qualified" not in [p.event_type for p in decision.events]  # one MQL


def test_a_churned_customer_s_hand_raise_is_a_win_back() -> None:
    lead = uuid.uuid4()
    won, _ = fold([*ready(lead), on(lead, DealWon(amount=Decimal("10")))])
    churned, _ = fold([on(lead, CustomerChurned())], state=won.states[lead])
    assert churned.states[lead].row.status == "churned"
    later = T0 + timedelta(days=2)
    out, appended = fold([activity(lead, "demo_request")], ctx_at(later), churned.states[lead])
    row = out.states[lead].row
    assert (row.cycle, row.status) == ("new_business", "open")
    assert "expansion.opened" not in appended[0]
