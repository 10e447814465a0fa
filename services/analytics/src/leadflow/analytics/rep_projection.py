"""The reps projection: hand-off outcomes per rep and team, SLA verdicts per policy, and
the per-event facts their drill-downs list."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from leadflow.analytics.domain import Effects, Fact, LeadJourney
from leadflow.analytics.fold_group import (
    NO_CURRENCY,
    LeadProjection,
    count_rows,
    exact_decimal,
)
from leadflow.analytics.segments import UNKNOWN
from leadflow.analytics.staging import Records, StagingTable

REP_COLUMNS = (
    "assigned",
    "accepted",
    "rejected",
    "recycled",
    "sqls",
    "opportunities",
    "won",
    "lost",
    "won_revenue",
)
_REP_EVENT = {
    "lead.assigned": 0,
    "lead.reassigned": 0,
    "lead.accepted": 1,
    "lead.rejected": 2,
    "lead.recycled": 3,
    "lead.sales_qualified": 4,
    "opportunity.opened": 5,
    "deal.won": 6,
    "deal.lost": 7,
}
_REASON_KIND = {"lead.rejected": "rejected", "lead.recycled": "recycled", "deal.lost": "lost"}
SLA_COLUMNS = (
    "started",
    "warned",
    "breached",
    "met_on_time",
    "met_late",
    "escalations",
    "late",  # clocks whose verdict is late (breached, or met late without a breach)
    "elapsed_seconds",
)
_SLA_EVENT = {"sla.started": 0, "sla.warning": 1, "sla.breached": 2, "sla.escalation_raised": 5}
# Every reps/SLA row is also keyed by the lead's first-touch channel and campaign, so the
# reps report (and the dashboard's SLA panel) honour the same filters as every other report.
_SEGMENT = "channel text, campaign text"
_REPS_STAGING = StagingTable(
    "rb_rep_daily",
    f"day date, rep_id text, team_id text, queue_id text, {_SEGMENT}, currency text, "
    + ", ".join(f"{c} bigint" for c in REP_COLUMNS[:8])
    + ", won_revenue numeric",
    target="rep_daily",
    keys=("day", "rep_id", "team_id", "queue_id", "channel", "campaign", "currency"),
    values=REP_COLUMNS,
)
_REASONS_STAGING = StagingTable(
    "rb_rep_reasons",
    f"day date, rep_id text, team_id text, {_SEGMENT}, kind text, reason text, n bigint",
    target="rep_reasons",
    keys=("day", "rep_id", "team_id", "channel", "campaign", "kind", "reason"),
    values=("n",),
)
_SLA_STAGING = StagingTable(
    "rb_sla_daily",
    f"day date, policy_id text, team_id text, rep_id text, {_SEGMENT}, "
    + ", ".join(f"{c} bigint" for c in SLA_COLUMNS[:7])
    + ", elapsed_seconds float8",
    target="sla_daily",
    keys=("day", "policy_id", "team_id", "rep_id", "channel", "campaign"),
    values=SLA_COLUMNS,
)


# One row per counted event (insert-only, COPYed straight in): what a count's drill-down
# lists. ``kind`` is the count column the event added one to.
_REP_FACT = StagingTable(
    "rep_fact",
    f"lead_id uuid, day date, rep_id text, team_id text, queue_id text, {_SEGMENT}, kind text",
)
_SLA_FACT = StagingTable(
    "sla_fact",
    f"lead_id uuid, day date, policy_id text, team_id text, rep_id text, {_SEGMENT}, kind text",
)


def _who(p: Any, st: LeadJourney) -> tuple[str, str]:
    rep = p.get("rep_id") or st.rep_id
    team = p.get("team_id") or st.team_id
    return str(rep or UNKNOWN), str(team or UNKNOWN)


class RepsProjection(LeadProjection):
    """Per rep (or queue)/team, segment and day: hand-off outcomes and reasons, won revenue
    per currency; per SLA policy and the day each clock started: one verdict per clock.
    Every count added is also a row of ``rep_fact`` / ``sla_fact`` (the drill-down's)."""

    name = "reps"
    tables = ("rep_daily", "rep_reasons", "sla_daily", "rep_fact", "sla_fact")
    needs_effects = False

    def wants(self, event_type: str) -> bool:
        return event_type in _REP_EVENT or event_type.startswith("sla.")

    def start(self) -> Any:
        return ({}, {}, {}, [], [])

    def collect(self, acc: Any, f: Fact, st: LeadJourney, fx: Effects) -> None:
        et = f.event_type
        idx = _REP_EVENT.get(et)
        if idx is None and not et.startswith("sla."):
            return
        reps, reasons, sla, rep_facts, sla_facts = acc
        p, day = f.payload, f.occurred_at.date()
        seg = (st.channel, st.campaign)
        if idx is not None:
            rep, team = _who(p, st)
            queue = UNKNOWN
            if et in ("lead.assigned", "lead.reassigned"):
                rep, team, queue = st.rep_id, st.team_id, st.queue_id
            _rep_row(reps, (day, rep, team, queue, *seg, NO_CURRENCY))[idx] += 1
            rep_facts.append((f.lead_id, day, rep, team, queue, *seg, REP_COLUMNS[idx]))
            if et == "deal.won" and fx.won:
                _rep_row(reps, (day, rep, team, queue, *seg, fx.currency))[8] += exact_decimal(
                    fx.won
                )
            kind = _REASON_KIND.get(et)
            if kind is not None:
                rkey = (day, rep, team, *seg, kind, str(p.get("reason_code") or UNKNOWN))
                reasons[rkey] = reasons.get(rkey, 0) + 1
            return
        if p.get("policy_id") and fx.sla_day is not None:
            # The clock's own owner (sla-monitor's), not the lead's current one.
            rep, team = fx.sla_owner
            key = (fx.sla_day, str(p["policy_id"]), team, rep, *seg)
            srow = _sla_row(sla, key)
            counted = []
            if et == "sla.met":
                counted.append(3 if p.get("on_time") else 4)
                srow[7] += float(p.get("elapsed_seconds") or 0.0)
            elif et in _SLA_EVENT:
                counted.append(_SLA_EVENT[et])
            if fx.sla_verdict == "late":
                counted.append(6)
            for i in counted:
                srow[i] += 1
                sla_facts.append((f.lead_id, *key, SLA_COLUMNS[i]))

    def records(self, acc: Any, states: dict[str, LeadJourney], touched: set[str]) -> Records:
        return [
            (_REPS_STAGING, count_rows(acc[0])),
            (_REASONS_STAGING, [(*k, n) for k, n in acc[1].items()]),
            (_SLA_STAGING, count_rows(acc[2])),
            (_REP_FACT, acc[3]),
            (_SLA_FACT, acc[4]),
        ]


def _rep_row(reps: dict[tuple[Any, ...], list[Any]], key: tuple[Any, ...]) -> list[Any]:
    row = reps.get(key)
    if row is None:
        row = reps[key] = [0, 0, 0, 0, 0, 0, 0, 0, Decimal(0)]
    return row


def _sla_row(sla: dict[tuple[Any, ...], list[Any]], key: tuple[Any, ...]) -> list[Any]:
    row = sla.get(key)
    if row is None:
        row = sla[key] = [0, 0, 0, 0, 0, 0, 0, 0.0]
    return row
