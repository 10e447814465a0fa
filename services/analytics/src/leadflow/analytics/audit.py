"""The process audit: what the event log says about how the lead process really runs.

Computed for a period (``history.Period``) from the walked leads, the published process
definition and the SLA policies that hold its stages. Each section says what it counts:

* ``speed_to_lead``: for every lead that became an MQL in the period, the time from that
  moment to the first ``lead.contacted`` after it (by the period's end); ``never_contacted``
  counts the MQLs with no contact by then.
* ``leakage``: per stage, stays that ended in the period without moving on, by reason.
* ``defect_rate``: of the MQL entries in the period, the share sales rejected
  (``lead.rejected``) before they moved on, with the reasons.
* ``recycled_return``: of the leads sales handed back in the period (rejected or
  recycled), the share that became an MQL again by the period's end.
* ``gaps``: open stages without an owner or an SLA, sources with inquiries and no MQL,
  leads in sales stages owned by no rep, reps assigned leads who recorded nothing.
* ``maturity``: seven criteria of a mature process, each met or not with its evidence.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from leadflow.analytics.history import (
    REP_ACTIVITY,
    LeadWalk,
    Period,
    median,
    p90,
    share,
)
from leadflow.events import lifecycle
from leadflow.events.process import ProcessDefinition

# The kernel's open stages in its order (a customer, won or churned lead waits in none).
OPEN_STAGES = tuple(s.value for s in lifecycle.STAGE_ORDER if s in lifecycle.OPEN_STAGES)
SALES_STAGES = frozenset({"mql", "sal", "sql", "opportunity"})
# Share of the evidence a criterion needs to count as met (automation, routing, scoring).
MATURE_SHARE = 0.9
LIST_LIMIT = 100  # lead ids listed per gap (the count is always whole)


def speed_to_lead(leads: Sequence[LeadWalk], period: Period, now: datetime) -> dict[str, Any]:
    horizon = period.end or now
    delays: list[float] = []
    never = 0
    mqls = 0
    for lead in leads:
        for stay in lead.stays:
            if stay.stage != "mql" or not period.holds(stay.entered_at):
                continue
            mqls += 1
            contact = next(
                (
                    e.occurred_at
                    for e in lead.events
                    if e.event_type == "lead.contacted"
                    and stay.entered_at <= e.occurred_at < horizon
                ),
                None,
            )
            if contact is None:
                never += 1
            else:
                delays.append((contact - stay.entered_at).total_seconds())
    return {
        "mqls": mqls,
        "contacted": len(delays),
        "median_seconds": median(delays),
        "p90_seconds": p90(delays),
        "within_5_minutes": sum(1 for d in delays if d <= 300),
        "within_1_hour": sum(1 for d in delays if d <= 3600),
        "never_contacted": never,
    }


def leakage(leads: Sequence[LeadWalk], period: Period) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for lead in leads:
        for stay in lead.stays:
            if stay.left_at is None or not period.holds(stay.left_at) or not stay.leaked:
                continue
            entry = out.setdefault(stay.stage, {"total": 0, "by_reason": {}})
            entry["total"] += 1
            reason = stay.reason or stay.left_by or "unknown"
            entry["by_reason"][reason] = entry["by_reason"].get(reason, 0) + 1
    return {s: out[s] for s in OPEN_STAGES if s in out}


def defect_rate(leads: Sequence[LeadWalk], period: Period, now: datetime) -> dict[str, Any]:
    """A rejected MQL (also after acceptance, from SAL) is a defect of marketing's bar."""
    horizon = period.end or now
    mqls = rejected = 0
    reasons: dict[str, int] = {}
    for lead in leads:
        for i, stay in enumerate(lead.stays):
            if stay.stage != "mql" or not period.holds(stay.entered_at):
                continue
            mqls += 1
            # The rejection ends this MQL's run: the MQL stay itself or the SAL after it.
            run = [stay]
            if stay.left_to == "sal" and i + 1 < len(lead.stays):
                run.append(lead.stays[i + 1])
            hit = next(
                (
                    s
                    for s in run
                    if s.left_by == "lead.rejected" and s.left_at and s.left_at < horizon
                ),
                None,
            )
            if hit is not None:
                rejected += 1
                code = (hit.reason or "lead.rejected").removeprefix("lead.rejected:")
                reasons[code] = reasons.get(code, 0) + 1
    return {
        "mqls": mqls,
        "rejected": rejected,
        "rate": share(rejected, mqls),
        "reasons": dict(sorted(reasons.items())),
    }


def recycled_return(leads: Sequence[LeadWalk], period: Period, now: datetime) -> dict[str, Any]:
    horizon = period.end or now
    handed_back = returned = 0
    for lead in leads:
        for i, stay in enumerate(lead.stays):
            if stay.left_by not in ("lead.recycled", "lead.rejected"):
                continue
            if not period.holds(stay.left_at):
                continue
            handed_back += 1
            if any(s.stage == "mql" and s.entered_at < horizon for s in lead.stays[i + 1 :]):
                returned += 1
    return {
        "handed_back": handed_back,
        "returned_to_mql": returned,
        "rate": share(returned, handed_back),
    }


def gaps(
    definition: ProcessDefinition,
    sla_policies: Mapping[str, Sequence[str]],
    leads: Sequence[LeadWalk],
    period: Period,
    now: datetime,
) -> dict[str, Any]:
    horizon = period.end or now
    no_owner = [
        s for s in OPEN_STAGES if (d := definition.stage(s)) is None or not (d.owner or "").strip()
    ]
    no_sla = [s for s in OPEN_STAGES if not sla_policies.get(s)]
    inquiries: dict[str, int] = {}
    converted: dict[str, int] = {}
    unowned: list[str] = []
    assigned_to: dict[str, int] = {}
    active: set[str] = set()
    for lead in leads:
        entered = [s for s in lead.stays if period.holds(s.entered_at)]
        if any(s.stage == "inquiry" for s in entered):
            inquiries[lead.channel] = inquiries.get(lead.channel, 0) + 1
            if any(s.stage == "mql" and s.entered_at < horizon for s in lead.stays):
                converted[lead.channel] = converted.get(lead.channel, 0) + 1
        at_end = [s for s in lead.stays if s.entered_at < horizon]
        if at_end and at_end[-1].stage in SALES_STAGES and _owner_at(lead, horizon) is None:
            unowned.append(lead.lead_id)
        for e in lead.events:
            if not period.holds(e.occurred_at):
                continue
            rep = e.payload.get("rep_id")
            if e.event_type in ("lead.assigned", "lead.reassigned") and rep:
                assigned_to[str(rep)] = assigned_to.get(str(rep), 0) + 1
            elif e.event_type in REP_ACTIVITY and rep:
                active.add(str(rep))
    unowned.sort()
    return {
        "stages_without_owner": no_owner,
        "stages_without_sla": no_sla,
        "sources_without_conversion": [
            {"channel": c, "inquiries": n}
            for c, n in sorted(inquiries.items())
            if not converted.get(c)
        ],
        "leads_without_owner": {"count": len(unowned), "lead_ids": unowned[:LIST_LIMIT]},
        "reps_without_activity": [
            {"rep_id": r, "assigned": n} for r, n in sorted(assigned_to.items()) if r not in active
        ],
    }


def _owner_at(lead: LeadWalk, horizon: datetime) -> str | None:
    owner: str | None = None
    for e in lead.events:
        if e.occurred_at >= horizon:
            break
        if e.event_type in ("lead.assigned", "lead.reassigned"):
            owner = e.payload.get("rep_id") or None
        elif e.event_type in REP_ACTIVITY and e.payload.get("rep_id") and owner is None:
            owner = str(e.payload["rep_id"])
    return owner


def _period_events(leads: Sequence[LeadWalk], period: Period, event_type: str) -> list[Any]:
    return [
        e
        for lead in leads
        for e in lead.events
        if e.event_type == event_type and period.holds(e.occurred_at)
    ]


def maturity(
    definition: ProcessDefinition,
    version: int,
    sla_policies: Mapping[str, Sequence[str]],
    published: Mapping[str, int],
    leads: Sequence[LeadWalk],
    period: Period,
    gap: Mapping[str, Any],
) -> dict[str, Any]:
    """Seven criteria, each ``{met, evidence}``; the score is how many are met."""
    mql = definition.stage("mql")
    mql_entries = [
        (lead, s)
        for lead in leads
        for s in lead.stays
        if s.stage == "mql" and period.holds(s.entered_at)
    ]
    assigned = sum(
        1
        for lead, s in mql_entries
        if any(
            e.event_type == "lead.assigned"
            and e.occurred_at >= s.entered_at
            and (s.left_at is None or e.occurred_at <= s.left_at)
            for e in lead.events
        )
    )
    scored = sum(
        1
        for lead, s in mql_entries
        if any(e.event_type == "lead.scored" and e.occurred_at <= s.entered_at for e in lead.events)
    )
    assignments = _period_events(leads, period, "lead.assigned") + _period_events(
        leads, period, "lead.reassigned"
    )
    documented = sum(1 for e in assignments if e.payload.get("rule_id") or e.payload.get("method"))
    sla_started = len(_period_events(leads, period, "sla.started"))
    outcomes = len(_period_events(leads, period, "deal.won")) + len(
        _period_events(leads, period, "deal.lost")
    )
    rejections = _period_events(leads, period, "lead.rejected") + _period_events(
        leads, period, "lead.recycled"
    )
    with_reason = sum(1 for e in rejections if e.payload.get("reason_code"))
    known_source = sum(1 for lead, _ in mql_entries if lead.channel not in ("", "(none)"))
    n = len(mql_entries)

    def ratio(k: int, total: int) -> bool:
        return total > 0 and k / total >= MATURE_SHARE

    criteria = {
        "sales_ready_definition": {
            "met": version > 0
            and mql is not None
            and bool(mql.definition.strip())
            and bool(mql.entry_criteria),
            "evidence": {
                "process_version": version,
                "mql_defined": mql is not None and bool(mql.definition.strip()),
                "mql_entry_criteria": len(mql.entry_criteria) if mql else 0,
            },
        },
        "agreed_statuses": {
            "met": version > 0
            and not gap["stages_without_owner"]
            and (not rejections or with_reason == len(rejections)),
            "evidence": {
                "process_version": version,
                "stages_without_owner": list(gap["stages_without_owner"]),
                "hand_backs": len(rejections),
                "hand_backs_with_reason": with_reason,
            },
        },
        "automated_flow": {
            "met": ratio(assigned, n),
            "evidence": {
                "mqls": n,
                "assigned_automatically": assigned,
                "share": share(assigned, n),
            },
        },
        "documented_routing": {
            "met": published.get("routing.rules_published", 0) > 0
            or ratio(documented, len(assignments)),
            "evidence": {
                "routing_rules_published": published.get("routing.rules_published", 0),
                "assignments": len(assignments),
                "assignments_naming_rule_or_method": documented,
            },
        },
        "scoring": {
            "met": ratio(scored, n),
            "evidence": {"mqls": n, "scored_before_mql": scored, "share": share(scored, n)},
        },
        "sla": {
            "met": bool(sla_policies.get("mql"))
            and bool(sla_policies.get("sal"))
            and sla_started > 0,
            "evidence": {
                "stages_with_sla": sorted(s for s, ids in sla_policies.items() if ids),
                "sla_clocks_started": sla_started,
            },
        },
        "analytics": {
            "met": outcomes > 0 and ratio(known_source, n),
            "evidence": {
                "outcomes_recorded": outcomes,
                "mqls_with_known_source": known_source,
                "mqls": n,
            },
        },
    }
    score = sum(1 for c in criteria.values() if c["met"])
    return {"score": score, "of": len(criteria), "criteria": criteria}


def audit(
    definition: ProcessDefinition,
    version: int,
    sla_policies: Mapping[str, Sequence[str]],
    published: Mapping[str, int],
    leads: Sequence[LeadWalk],
    period: Period,
    now: datetime,
) -> dict[str, Any]:
    gap = gaps(definition, sla_policies, leads, period, now)
    return {
        "process_version": version,
        "from": period.start.isoformat() if period.start else None,
        "until": period.end.isoformat() if period.end else None,
        "leads": len(leads),
        "speed_to_lead": speed_to_lead(leads, period, now),
        "leakage": leakage(leads, period),
        "defect_rate": defect_rate(leads, period, now),
        "recycled_return": recycled_return(leads, period, now),
        "gaps": gap,
        "maturity": maturity(definition, version, sla_policies, published, leads, period, gap),
    }
