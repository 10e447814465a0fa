"""sla-monitor's consumer decision without a database: ``decide_event`` (what one event does
to a lead's clocks) and a batch folded by the kernel's ``decide_each`` exactly as one event
at a time. The built-in policy set and the default calendar (Mon-Fri 09-17 UTC)."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from leadflow.events.batch import Decision, Outcome, Stamped, decide_each
from leadflow.events.catalogue.common import LeadSnapshot
from leadflow.events.catalogue.routing import (
    LeadAccepted,
    LeadAssigned,
    LeadContacted,
    LeadReassigned,
)
from leadflow.events.catalogue.scoring import (
    LeadQualified,
    NurtureEnrolled,
    NurtureTouchDue,
)
from leadflow.events.catalogue.sla import SlaMet, SlaStarted, SlaStopped
from leadflow.events.envelope import Envelope, EventPayload, new_id
from leadflow.sla_monitor.domain import (
    LeadClocks,
    LeadFacts,
    SlaRules,
    decide_event,
    default_calendar,
    default_policies,
)
from leadflow.sla_monitor.handlers import LeadClockHandler, SlaBatch

MONDAY_10 = datetime(2026, 3, 9, 10, 0, tzinfo=UTC)
M = timedelta(minutes=1)
H = timedelta(hours=1)


def rules() -> SlaRules:
    counter = itertools.count(1)
    return SlaRules(
        policies=default_policies(),
        policies_version=3,
        calendars={"default": default_calendar()},
        new_sla_id=lambda: f"sla-{next(counter):03d}",
    )


def envelope(payload: EventPayload, lead: uuid.UUID, at: datetime) -> Envelope:
    return Envelope.new(payload, lead_id=lead, occurred_at=at)


def assigned(lead: uuid.UUID, at: datetime, rep: str = "rep-1") -> Envelope:
    snapshot = LeadSnapshot(grade="A", region="EMEA", country="DE", channel="web_form")
    payload = LeadAssigned(
        assignee_kind="rep", rep_id=rep, team_id="team-a", method="direct", lead=snapshot
    )
    return envelope(payload, lead, at)


def qualified(lead: uuid.UUID, at: datetime) -> Envelope:
    payload = LeadQualified(fit=80, engagement=60, grade="A", matrix_cell="A1", model_version=1)
    return envelope(payload, lead, at)


def accepted(lead: uuid.UUID, at: datetime, rep: str = "rep-1") -> Envelope:
    return envelope(LeadAccepted(rep_id=rep), lead, at)


def stamped(decision: Decision[LeadClocks]) -> list[tuple[str, datetime | None]]:
    """(event type, time) of each event the decision appends."""
    out: list[tuple[str, datetime | None]] = []
    for item in decision.events:
        if isinstance(item, Stamped):
            out.append((item.payload.event_type, item.occurred_at))
        else:
            out.append((item.event_type, decision.occurred_at))
    return out


def payloads(decision: Decision[LeadClocks]) -> list[EventPayload]:
    return [i.payload if isinstance(i, Stamped) else i for i in decision.events]


def test_an_assignment_starts_the_accept_clock_for_the_rep_with_its_timers() -> None:
    lead = new_id()
    d = decide_event(None, assigned(lead, MONDAY_10), rules())
    assert d.state is not None
    assert d.state.facts == LeadFacts(
        grade="A", region="EMEA", country="DE", channel="web_form", rep_id="rep-1", team_id="team-a"
    )
    assert [(s.policy_id, s.rep_id, s.due_at) for s in d.state.running] == [
        ("accept-4bh", "rep-1", MONDAY_10 + 4 * H)
    ]
    (started,) = payloads(d)
    assert isinstance(started, SlaStarted)
    assert (started.policy_version, started.started_at) == (3, MONDAY_10)
    assert stamped(d) == [("sla.started", MONDAY_10)]
    # Warn at 75% of four business hours, breach at the deadline; nothing to cancel.
    assert [(t.key, t.kind, t.due_at, t.lead_id) for t in d.schedule] == [
        ("sla-001:warn", "sla.warn", MONDAY_10 + 3 * H, lead),
        ("sla-001:breach", "sla.breach", MONDAY_10 + 4 * H, lead),
    ]
    assert d.cancel == []
    assert set(d.state.started) == {"sla-001"} and d.state.ended == {}
    assert d.state.seen == {"lead.assigned": MONDAY_10}


def test_accepting_meets_the_clock_on_time_cancels_its_timers_and_starts_the_next_two() -> None:
    lead = new_id()
    r = rules()
    first = decide_event(None, assigned(lead, MONDAY_10), r)
    d = decide_event(first.state, accepted(lead, MONDAY_10 + 90 * M), r)
    assert d.state is not None
    met, *started = payloads(d)
    assert isinstance(met, SlaMet)
    assert (met.sla_id, met.on_time, met.elapsed_seconds, met.late_by_seconds) == (
        "sla-001",
        True,
        5400.0,
        0.0,
    )
    assert [(p.policy_id, p.started_by_event) for p in started if isinstance(p, SlaStarted)] == [
        ("contact-1bd", "lead.accepted"),
        ("sal-max-14d", "lead.accepted"),
    ]
    assert d.cancel == ["sla-001:warn", "sla-001:breach", "sla-001:esc"]
    assert d.state.ended["sla-001"].status == "met"
    assert [s.policy_id for s in d.state.running] == ["contact-1bd", "sal-max-14d"]
    # sal-max-14d counts calendar days: due 14 days later, at the same wall-clock time.
    sal = d.state.running[1]
    assert sal.due_at == MONDAY_10 + 90 * M + timedelta(days=14)


def test_a_late_acceptance_is_met_late_by_the_business_time_past_the_deadline() -> None:
    lead = new_id()
    r = rules()
    first = decide_event(None, assigned(lead, MONDAY_10), r)
    d = decide_event(first.state, accepted(lead, MONDAY_10 + 5 * H), r)
    met = payloads(d)[0]
    assert isinstance(met, SlaMet)
    assert (met.on_time, met.late_by_seconds, met.elapsed_business_seconds) == (
        False,
        3600.0,
        5 * 3600.0,
    )


def test_an_assignment_seen_before_its_qualification_meets_the_new_clock_at_its_own_time() -> None:
    """Routing's and scoring's topics are not ordered against each other: the MQL clock the
    qualification starts was already met by the assignment, 5 minutes after it."""
    lead = new_id()
    r = rules()
    first = decide_event(None, assigned(lead, MONDAY_10 + 5 * M), r)
    d = decide_event(first.state, qualified(lead, MONDAY_10), r)
    assert d.state is not None
    assert stamped(d) == [("sla.started", MONDAY_10), ("sla.met", MONDAY_10 + 5 * M)]
    met = payloads(d)[1]
    assert isinstance(met, SlaMet)
    assert (met.policy_id, met.met_by_event, met.on_time, met.elapsed_seconds) == (
        "mql-assigned-30m",
        "lead.assigned",
        True,
        300.0,
    )
    # The clock never ran: no timer for it, none to cancel; the accept clock still runs.
    assert d.schedule == [] and d.cancel == []
    assert [s.policy_id for s in d.state.running] == ["accept-4bh"]
    assert d.state.ended["sla-002"].status == "met"
    # A marketing-side clock has no sales owner.
    assert d.state.started["sla-002"].sla.rep_id is None


def test_a_reassignment_stops_the_old_owners_clock_and_starts_one_for_the_new_owner() -> None:
    lead = new_id()
    r = rules()
    first = decide_event(None, assigned(lead, MONDAY_10), r)
    moved = LeadReassigned(
        from_rep_id="rep-1",
        assignee_kind="rep",
        rep_id="rep-2",
        team_id="team-b",
        reason="sla_breach",
    )
    d = decide_event(first.state, envelope(moved, lead, MONDAY_10 + 5 * H), r)
    assert d.state is not None
    stopped, started = payloads(d)
    assert isinstance(stopped, SlaStopped) and stopped.rep_id == "rep-1"
    assert isinstance(started, SlaStarted) and (started.rep_id, started.team_id) == (
        "rep-2",
        "team-b",
    )
    assert d.state.ended["sla-001"].status == "stopped"
    assert [(s.sla_id, s.rep_id) for s in d.state.running] == [("sla-002", "rep-2")]
    assert "sla-001:breach" in d.cancel
    assert [t.key for t in d.schedule] == ["sla-002:warn", "sla-002:breach"]


def test_a_nurture_touch_meets_the_running_clock_and_starts_the_next() -> None:
    lead = new_id()
    r = rules()
    first = decide_event(None, envelope(NurtureEnrolled(track_id="t1"), lead, MONDAY_10), r)
    touch = NurtureTouchDue(
        track_id="t1", step=1, content_id="c", channel="email", due_at=MONDAY_10
    )
    d = decide_event(first.state, envelope(touch, lead, MONDAY_10 + timedelta(days=10)), r)
    assert d.state is not None
    assert [p.event_type for p in payloads(d)] == ["sla.met", "sla.started"]
    assert [s.sla_id for s in d.state.running] == ["sla-002"]


def test_a_clock_of_a_removed_policy_keeps_running_until_an_event_ends_it() -> None:
    lead = new_id()
    first = decide_event(None, assigned(lead, MONDAY_10), rules())
    without_accept = SlaRules(
        policies=[p for p in default_policies() if p.policy_id != "accept-4bh"],
        policies_version=4,
        calendars={},
    )
    d = decide_event(first.state, assigned(lead, MONDAY_10 + H), without_accept)
    assert d.state is not None
    assert [s.policy_id for s in d.state.running] == ["accept-4bh"]
    assert d.events == [] and d.schedule == [] and d.cancel == []


def test_an_event_no_policy_mentions_only_teaches_the_facts() -> None:
    lead = new_id()
    d = decide_event(None, envelope(LeadContacted(rep_id="rep-9"), lead, MONDAY_10), rules())
    assert d.state is not None
    assert d.events == [] and d.state.running == ()
    assert d.state.seen == {"lead.contacted": MONDAY_10}


# -- a batch, folded by the kernel ------------------------------------------------------


def stories(lead_a: uuid.UUID, lead_b: uuid.UUID) -> tuple[list[Envelope], list[Envelope]]:
    a = [
        assigned(lead_a, MONDAY_10 + 5 * M),
        qualified(lead_a, MONDAY_10),
        accepted(lead_a, MONDAY_10 + H),
        envelope(LeadContacted(rep_id="rep-1"), lead_a, MONDAY_10 + 3 * H),
    ]
    b = [assigned(lead_b, MONDAY_10), accepted(lead_b, MONDAY_10 + 6 * H)]
    return a, b


def fold(events: Sequence[Envelope]) -> Outcome[LeadClocks]:
    handler = LeadClockHandler(config=None)  # type: ignore[arg-type]  # decide reads no config
    return decide_each(handler, {}, events, SlaBatch(rules=rules()))


def summary(out: Outcome[LeadClocks], lead: uuid.UUID) -> tuple[object, ...]:
    state = out.states[lead]
    events = [
        (p.event_type, getattr(p, "policy_id", None), when)
        for lid, ps, _, when in out.appends
        if lid == lead
        for p in ps
    ]
    timers = sorted((t.kind, t.due_at) for t in out.schedule.values() if t.lead_id == lead)
    return (
        events,
        [(s.policy_id, s.status) for s in state.running],
        sorted((c.status, c.by_event) for c in state.ended.values()),
        timers,
        state.facts,
    )


def test_a_batch_decides_each_lead_as_its_events_one_at_a_time() -> None:
    lead_a, lead_b = new_id(), new_id()
    a, b = stories(lead_a, lead_b)
    interleaved = [e for pair in itertools.zip_longest(a, b) for e in pair if e is not None]
    together = fold(interleaved)
    alone_a, alone_b = fold(a), fold(b)
    assert summary(together, lead_a) == summary(alone_a, lead_a)
    assert summary(together, lead_b) == summary(alone_b, lead_b)
    # The stories did what they say.
    events_a, running_a, ended_a, timers_a, _ = summary(together, lead_a)
    assert ended_a == [
        ("met", "lead.accepted"),
        ("met", "lead.assigned"),
        ("met", "lead.contacted"),
    ]
    assert running_a == [("sal-max-14d", "open")]
    assert [kind for kind, _ in timers_a] == ["sla.breach", "sla.warn"]
    assert ("sla.met", "mql-assigned-30m", MONDAY_10 + 5 * M) in events_a


def test_a_clock_started_and_ended_in_one_batch_leaves_no_timer_behind() -> None:
    lead = new_id()
    out = fold([assigned(lead, MONDAY_10), accepted(lead, MONDAY_10 + H)])
    accept_keys = {"sla-001:warn", "sla-001:breach"}
    assert not accept_keys & set(out.schedule)
    assert [(s.policy_id, s.status) for s in out.states[lead].running] == [
        ("contact-1bd", "open"),
        ("sal-max-14d", "open"),
    ]
    # Every SLA event names the event that decided it.
    causes = [(cause.event_type if cause else None) for _, _, cause, _ in out.appends]
    assert causes == ["lead.assigned", "lead.accepted"]
