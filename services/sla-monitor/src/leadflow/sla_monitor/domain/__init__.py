"""Pure SLA rules: policies, the clocks they run on a lead and the decisions that drive them,
and compliance arithmetic. No I/O here: handlers load state, call these functions, and
persist what they return. Business calendars and business time are the kernel's
(``leadflow.events.calendar``), shared with routing's rep working hours.

- ``policies``: ``SlaPolicy`` (segment, duration, ladder), deadline arithmetic, the built-in set;
- ``facts``: ``LeadFacts``, what the events teach about a lead's segment and owner;
- ``clocks``: ``SlaInstance`` and what an event, a warning or a breach does to it;
- ``lead_clocks``: ``LeadClocks`` and ``decide_event``, the consumer batch's pure decision;
- ``clock_timers``: what a warn, breach or escalation timer does (``decide_warning``, ...);
- ``calendars``: which calendar a clock runs on;
- ``compliance``: verdicts and the compliance figures.
"""

from __future__ import annotations

from leadflow.sla_monitor.domain.calendars import (
    DEFAULT_CALENDAR_ID,
    choose_calendar,
    default_calendar,
)
from leadflow.sla_monitor.domain.clock_timers import (
    ClockChange,
    RaisedStep,
    decide_breach,
    decide_escalation,
    decide_warning,
)
from leadflow.sla_monitor.domain.clocks import (
    EscalationDecision,
    Met,
    Plan,
    SlaInstance,
    Started,
    TimerKind,
    all_timer_keys,
    escalation_due_times,
    escalations_due,
    meet_sla,
    plan_for_event,
    should_breach,
    should_warn,
    start_sla,
    timer_key,
)
from leadflow.sla_monitor.domain.compliance import (
    Outcome,
    compliance,
    verdict,
)
from leadflow.sla_monitor.domain.facts import (
    LeadFacts,
    already_ended,
    facts_after,
)
from leadflow.sla_monitor.domain.lead_clocks import (
    Closing,
    LeadClocks,
    NewClock,
    SlaRules,
    decide_event,
)
from leadflow.sla_monitor.domain.policies import (
    DomainError,
    Duration,
    DurationUnit,
    EscalationAction,
    EscalationStep,
    Segment,
    SlaPolicy,
    add_calendar_time,
    deadline_for,
    default_policies,
    elapsed,
    load_policies,
)

__all__ = [
    "DEFAULT_CALENDAR_ID",
    "ClockChange",
    "Closing",
    "DomainError",
    "Duration",
    "DurationUnit",
    "EscalationAction",
    "EscalationDecision",
    "EscalationStep",
    "LeadClocks",
    "LeadFacts",
    "Met",
    "NewClock",
    "Outcome",
    "Plan",
    "RaisedStep",
    "Segment",
    "SlaInstance",
    "SlaPolicy",
    "SlaRules",
    "Started",
    "TimerKind",
    "add_calendar_time",
    "all_timer_keys",
    "already_ended",
    "choose_calendar",
    "compliance",
    "deadline_for",
    "decide_breach",
    "decide_escalation",
    "decide_event",
    "decide_warning",
    "default_calendar",
    "default_policies",
    "elapsed",
    "escalation_due_times",
    "escalations_due",
    "facts_after",
    "load_policies",
    "meet_sla",
    "plan_for_event",
    "should_breach",
    "should_warn",
    "start_sla",
    "timer_key",
    "verdict",
]
