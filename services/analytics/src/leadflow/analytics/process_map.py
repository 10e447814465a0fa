"""The process map: the published process drawn as boxes and arrows, with live figures.

Boxes are the process's stages (owner, expected duration, SLA policies); arrows are the
moves the kernel's lifecycle table allows between them (forward, nurture, reject, recycle,
hold, resume, disqualify, re-engage), each with how many leads took it in the period. Per
stage, for the period:

* ``count``: leads that entered the stage;
* ``conversion``: of those, the share that moved on (to a stage in ``history.FORWARD``),
  by the period's end;
* ``median_seconds`` of the stays that ended in the period, against ``expected_seconds``,
  and ``over_expected``: stays (ended in the period, or still open at its end) longer than
  expected;
* ``leakage``: stays that ended in the period without moving on;
* ``current``: leads in the stage at the period's end.

The JSON is the console's contract (``GET /v1/process/map``); the dashboard draws the same.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from leadflow.analytics.history import FORWARD, LeadWalk, Period, Stay, median, share
from leadflow.events.lifecycle import MOVES, OPEN_STAGES, STAGE_ORDER
from leadflow.events.process import ProcessDefinition

_KIND_OF_EVENT: Mapping[str, str] = {
    "lead.rejected": "reject",
    "lead.recycled": "recycle",
    "lead.put_on_hold": "hold",
    "lead.disqualified": "disqualify",
    "lead.reinstated": "reengage",
    "lead.captured": "reengage",
    "inquiry.received": "reengage",
    "expansion.opened": "reengage",  # a customer's new buying cycle starts at inquiry
}


def arrow_kind(event_type: str, source: str, target: str) -> str:
    """What an arrow means on the map (its colour and label)."""
    if source == "on_hold" and event_type not in _KIND_OF_EVENT:
        return "resume" if target != "nurture" else "nurture"
    if event_type in _KIND_OF_EVENT:
        return _KIND_OF_EVENT[event_type]
    if target == "nurture":
        return "nurture"
    if target in FORWARD.get(source, frozenset()):
        return "forward"
    return "close"  # deal.lost


def allowed_arrows() -> list[dict[str, Any]]:
    """Every move between two different stages the lifecycle table allows, plus the resumes
    of a held lead (back to any active stage), one arrow per (from, to, event type)."""
    arrows: list[dict[str, Any]] = []
    for event_type in sorted(MOVES):
        move = MOVES[event_type]
        for source in STAGE_ORDER:
            if source not in move.sources or source == move.target:
                continue
            arrows.append(
                {
                    "from": source.value,
                    "to": move.target.value,
                    "event_type": event_type,
                    "kind": arrow_kind(event_type, source.value, move.target.value),
                }
            )
    resumes = {(a["from"], a["to"]) for a in arrows}
    for target in ("inquiry", "mql", "sal", "sql", "opportunity", "won", "lost"):
        if ("on_hold", target) not in resumes:
            arrows.append({"from": "on_hold", "to": target, "event_type": None, "kind": "resume"})
    rank = {s.value: i for i, s in enumerate(STAGE_ORDER)}
    arrows.sort(key=lambda a: (rank[a["from"]], rank[a["to"]], a["event_type"] or ""))
    return arrows


def _ended_in(stay: Stay, period: Period) -> bool:
    return stay.left_at is not None and period.holds(stay.left_at)


def _open_at_end(stay: Stay, period: Period) -> bool:
    started = period.end is None or stay.entered_at < period.end
    still = stay.left_at is None or (period.end is not None and stay.left_at >= period.end)
    return started and still


def stage_figures(
    stage: str,
    stays: Sequence[Stay],
    period: Period,
    expected_seconds: float | None,
    now: datetime,
) -> dict[str, Any]:
    """One box's live figures (see the module docstring for each)."""
    horizon = period.end or now
    entered = [s for s in stays if period.holds(s.entered_at)]
    forward = FORWARD.get(stage)
    moved_on = [
        s
        for s in entered
        if forward is not None
        and s.left_to in forward
        and s.left_at is not None
        and s.left_at < horizon
    ]
    ended = [s for s in stays if _ended_in(s, period)]
    durations = [s.seconds() or 0.0 for s in ended]
    still = [s for s in stays if _open_at_end(s, period)]
    over = 0
    if expected_seconds is not None:
        over = sum(1 for s in ended if (s.seconds() or 0.0) > expected_seconds) + sum(
            1 for s in still if (horizon - s.entered_at).total_seconds() > expected_seconds
        )
    leaked = [s for s in ended if s.leaked]
    med = median(durations)
    return {
        "count": len(entered),
        "current": len(still),
        "conversion": share(len(moved_on), len(entered)) if forward is not None else None,
        "median_seconds": med,
        "expected_seconds": expected_seconds,
        "median_vs_expected": (
            round(med / expected_seconds, 4) if med is not None and expected_seconds else None
        ),
        "over_expected": over,
        "leakage": len(leaked),
    }


def process_map(
    definition: ProcessDefinition,
    version: int,
    sla_policies: Mapping[str, Sequence[str]],
    leads: Sequence[LeadWalk],
    period: Period,
    now: datetime,
) -> dict[str, Any]:
    """The whole map: boxes (every lifecycle stage; undefined ones flagged) and arrows."""
    by_stage: dict[str, list[Stay]] = {}
    moves: dict[tuple[str, str, str], int] = {}
    for lead in leads:
        for stay in lead.stays:
            by_stage.setdefault(stay.stage, []).append(stay)
            if stay.left_by and stay.left_to and _ended_in(stay, period):
                key = (stay.stage, stay.left_to, stay.left_by)
                moves[key] = moves.get(key, 0) + 1
    boxes = []
    for stage in STAGE_ORDER:
        defined = definition.stage(stage.value)
        expected = (
            defined.expected_duration.seconds
            if defined is not None and defined.expected_duration is not None
            else None
        )
        boxes.append(
            {
                "stage": stage.value,
                "defined": defined is not None,
                "definition": defined.definition if defined else "",
                "owner": defined.owner if defined else None,
                "expected_duration": (
                    defined.expected_duration.model_dump()
                    if defined and defined.expected_duration
                    else None
                ),
                "next_steps": list(defined.next_steps) if defined else [],
                "sla_policies": list(sla_policies.get(stage.value, [])),
                # No funnel work left (a customer's next buying cycle starts at inquiry).
                "terminal": stage not in OPEN_STAGES,
                "figures": stage_figures(
                    stage.value, by_stage.get(stage.value, []), period, expected, now
                ),
            }
        )
    arrows = [
        {**a, "count": moves.get((a["from"], a["to"], a["event_type"]), 0)}
        for a in allowed_arrows()
    ]
    listed = {(a["from"], a["to"], a["event_type"]) for a in arrows}
    for (src, dst, et), n in moves.items():
        if (src, dst, et) in listed:
            continue
        # A held lead resumed by the event that reaches its stage (lead.accepted, ...).
        for a in arrows:
            if a["from"] == src and a["to"] == dst and a["event_type"] is None:
                a["count"] += n
    return {
        "process_version": version,
        "from": period.start.isoformat() if period.start else None,
        "until": period.end.isoformat() if period.end else None,
        "stages": boxes,
        "arrows": arrows,
    }
