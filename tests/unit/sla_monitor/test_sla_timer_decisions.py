"""What a clock's warn, breach and escalation timers do, decided without a database: the
built-in accept policy (4 business hours, warn at 75%, a four-step ladder) on the default
calendar (Mon-Fri 09-17 UTC), including late and repeated firings."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from leadflow.events.batch import Decision, Stamped
from leadflow.events.catalogue.sla import EscalationRaised, SlaBreached, SlaWarning
from leadflow.events.envelope import new_id
from leadflow.sla_monitor.domain import (
    ClockChange,
    LeadFacts,
    SlaInstance,
    decide_breach,
    decide_escalation,
    decide_warning,
    default_calendar,
    default_policies,
    start_sla,
)

CAL = default_calendar()
ACCEPT = next(p for p in default_policies() if p.policy_id == "accept-4bh")
FRIDAY_3PM = datetime(2026, 3, 6, 15, 0, tzinfo=UTC)
LEAD = new_id()


def monday(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, 9, hour, minute, tzinfo=UTC)


def clock() -> SlaInstance:
    """Started Friday 15:00: warn Monday 10:00, due Monday 11:00."""
    return start_sla("s1", ACCEPT, 1, FRIDAY_3PM, CAL, LeadFacts(rep_id="rep-1")).sla


def stamped(d: Decision[ClockChange]) -> list[tuple[str, datetime]]:
    return [(i.payload.event_type, i.occurred_at) for i in d.events if isinstance(i, Stamped)]


def test_the_warning_is_at_the_warn_time_however_late_the_timer_fires() -> None:
    sla = clock()
    assert (sla.warn_at, sla.due_at) == (monday(10), monday(11))
    d = decide_warning(sla, monday(10), monday(10, 30))
    assert stamped(d) == [("sla.warning", monday(10))]
    assert d.state == ClockChange(warned_at=monday(10))
    (item,) = d.events
    assert isinstance(item, Stamped) and isinstance(item.payload, SlaWarning)
    assert item.payload.rep_id == "rep-1"


def test_no_warning_once_due_or_for_a_clock_no_longer_open() -> None:
    assert decide_warning(clock(), monday(10), monday(11)) == Decision()
    assert decide_warning(replace(clock(), status="met"), monday(10), monday(10)) == Decision()


def test_the_breach_is_at_the_deadline_and_raises_the_first_step_at_once() -> None:
    d = decide_breach(clock(), LEAD, ACCEPT, CAL, monday(11))
    assert stamped(d) == [("sla.breached", monday(11)), ("sla.escalation_raised", monday(11))]
    assert d.state is not None
    assert (d.state.breached_at, d.state.late_by_seconds) == (monday(11), 0.0)
    assert [(r.step, r.action) for r in d.state.raised] == [(1, "remind_owner")]
    # notify_manager one business hour after the breach.
    assert [(t.key, t.kind, t.due_at, t.lead_id) for t in d.schedule] == [
        ("s1:esc", "sla.escalate", monday(12), LEAD)
    ]


def test_a_breach_noticed_late_raises_every_missed_step_once_in_order() -> None:
    """The service was down over Monday: at 15:30 the breach is 4.5 h late and the first
    three steps are all due, each at its own time; the last one waits for Wednesday."""
    d = decide_breach(clock(), LEAD, ACCEPT, CAL, monday(15, 30))
    breach = d.events[0]
    assert isinstance(breach, Stamped) and isinstance(breach.payload, SlaBreached)
    assert breach.payload.late_by_seconds == 4.5 * 3600
    assert stamped(d)[1:] == [
        ("sla.escalation_raised", monday(11)),
        ("sla.escalation_raised", monday(12)),
        ("sla.escalation_raised", monday(15)),
    ]
    assert [t.due_at for t in d.schedule] == [datetime(2026, 3, 11, 11, 0, tzinfo=UTC)]


def test_a_repeated_firing_raises_nothing_twice() -> None:
    breached = replace(clock(), status="breached", escalation_step=2)
    assert decide_breach(breached, LEAD, ACCEPT, CAL, monday(12)) == Decision()
    d = decide_escalation(breached, LEAD, ACCEPT, CAL, monday(12, 30))
    assert (d.events, d.state) == ((), None)
    assert [t.due_at for t in d.schedule] == [monday(15)]  # still waiting for step 3
    d = decide_escalation(breached, LEAD, ACCEPT, CAL, monday(15))
    ((event_type, at),) = stamped(d)
    assert (event_type, at) == ("sla.escalation_raised", monday(15))
    step = d.events[0]
    assert isinstance(step, Stamped) and isinstance(step.payload, EscalationRaised)
    assert (step.payload.step, step.payload.action) == (3, "reassign")


def test_the_ladders_end_schedules_nothing_more() -> None:
    done = replace(clock(), status="breached", escalation_step=4)
    assert decide_escalation(done, LEAD, ACCEPT, CAL, datetime(2026, 3, 20, tzinfo=UTC)) == (
        Decision()
    )


def test_a_clock_whose_policy_was_removed_breaches_but_climbs_no_ladder() -> None:
    d = decide_breach(clock(), LEAD, None, CAL, monday(11))
    assert stamped(d) == [("sla.breached", monday(11))]
    assert d.schedule == () and d.state is not None and d.state.raised == []
    breached = replace(clock(), status="breached")
    assert decide_escalation(breached, LEAD, None, CAL, monday(12)) == Decision()
