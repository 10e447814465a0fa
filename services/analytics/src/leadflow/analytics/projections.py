"""The analytics read models: the members of the ``LeadFold`` group (``fold_group``), each
counting the effects of the folded events into its tables.

Counts are kept as rollups: per day, ISO week and month (``grain`` d/w/m) and per
(channel, campaign) plus the channel, campaign and grand totals (segment ``''``), so a
report reads whole periods from the coarse rows and only the edge days from daily rows.
Python collects them per (channel, campaign, day) only; the merge rolls them up in SQL.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from leadflow.analytics.domain import MILESTONES, WON_EVENTS, Effects, Fact, LeadJourney
from leadflow.analytics.fold_group import (
    NO_CURRENCY,
    LeadFold,
    LeadProjection,
    count_rows,
    exact_decimal,
)
from leadflow.analytics.rep_projection import RepsProjection
from leadflow.analytics.staging import Records, StagingTable

# -- funnel -------------------------------------------------------------------------------

# One count column per milestone and outcome, in the waterfall's order: funnel and source
# cohorts keep a row per segment and period with all of them (not a row per milestone).
MILESTONE_COLUMNS: tuple[str, ...] = (
    "inquiries",
    "mqls",
    "sals",
    "sqls",
    "opportunities",
    "won",
    "lost",
    "disqualified",
)
MILESTONE_OF_COLUMN: dict[str, str] = dict(
    zip(MILESTONE_COLUMNS, (*MILESTONES, "lost", "disqualified"), strict=True)
)
_MILESTONE_INDEX = {m: i for i, m in enumerate(MILESTONE_OF_COLUMN.values())}
MILESTONE_SUMS = ", ".join(f"sum({c})" for c in MILESTONE_COLUMNS)
_MILESTONE_LIST = ", ".join(MILESTONE_COLUMNS)

# Counts are collected per (channel, campaign, day) only; the merge rolls them up in SQL into
# the rows a report reads: days per (channel, campaign) and grand total, weeks (cohorts
# only) and months under every segment total (channel, campaign, both, neither; '' = all).
_COHORT_STAGING = StagingTable(
    "rb_funnel_cohort",
    "channel text, campaign text, day date, " + ", ".join(f"{c} bigint" for c in MILESTONE_COLUMNS),
    target="funnel_cohort",
    keys=("grain", "channel", "campaign", "period"),
    values=MILESTONE_COLUMNS,
    source=f"SELECT 'd', coalesce(channel, ''), coalesce(campaign, ''), day, {MILESTONE_SUMS} "
    "FROM rb_funnel_cohort GROUP BY day, GROUPING SETS ((channel, campaign), ()) "
    "UNION ALL "
    f"SELECT g, coalesce(channel, ''), coalesce(campaign, ''), period, {MILESTONE_SUMS} FROM ("
    "SELECT 'w' AS g, date_trunc('week', day::timestamp)::date AS period, channel, campaign, "
    f"{_MILESTONE_LIST} FROM rb_funnel_cohort UNION ALL "
    "SELECT 'm', date_trunc('month', day::timestamp)::date, channel, campaign, "
    f"{_MILESTONE_LIST} FROM rb_funnel_cohort) x "
    "GROUP BY g, period, GROUPING SETS ((channel, campaign), (channel), (campaign), ())",
)
_FLOW_STAGING = StagingTable(
    "rb_funnel_flow",
    "channel text, campaign text, day date, from_stage text, to_stage text, via text, n bigint",
    target="funnel_flow",
    keys=("grain", "channel", "campaign", "period", "from_stage", "to_stage", "via"),
    values=("n",),
    source="SELECT 'd', coalesce(channel, ''), coalesce(campaign, ''), day, from_stage, "
    "to_stage, via, sum(n) FROM rb_funnel_flow "
    "GROUP BY day, from_stage, to_stage, via, GROUPING SETS ((channel, campaign), ()) "
    "UNION ALL "
    "SELECT 'm', coalesce(channel, ''), coalesce(campaign, ''), "
    "date_trunc('month', day::timestamp)::date, from_stage, to_stage, via, sum(n) "
    "FROM rb_funnel_flow GROUP BY date_trunc('month', day::timestamp)::date, from_stage, "
    "to_stage, via, GROUPING SETS ((channel, campaign), (channel), (campaign), ())",
)


class FunnelProjection(LeadProjection):
    """Milestones reached per inquiry cohort, and stage-to-stage flows per period."""

    name = "funnel"
    tables = ("funnel_cohort", "funnel_flow")

    def start(self) -> Any:
        return ({}, {})

    def collect(self, acc: Any, f: Fact, st: LeadJourney, fx: Effects) -> None:
        new, outcomes, t = fx.new_milestones, fx.outcomes, fx.transition
        retracted = fx.retracted
        if not (new or outcomes or retracted or t):
            return
        cohort, flow = acc
        ch, cp = st.channel, st.campaign
        inquiry_at = st.inquiry_at
        if inquiry_at is not None and (new or outcomes or retracted):
            key = (ch, cp, inquiry_at.date())
            row = cohort.get(key)
            if row is None:
                row = cohort[key] = [0, 0, 0, 0, 0, 0, 0, 0]
            for ms in (*new, *outcomes):
                row[_MILESTONE_INDEX[ms]] += 1
            for ms in retracted:
                row[_MILESTONE_INDEX[ms]] -= 1
        if t is not None:
            fkey = (ch, cp, t.at.date(), t.from_stage or "(start)", t.to_stage, f.event_type)
            flow[fkey] = flow.get(fkey, 0) + 1

    def records(self, acc: Any, states: dict[str, LeadJourney], touched: set[str]) -> Records:
        return [
            (_COHORT_STAGING, count_rows(acc[0])),
            (_FLOW_STAGING, [(*k, n) for k, n in acc[1].items()]),
        ]


# -- sources ------------------------------------------------------------------------------

SOURCE_COLUMNS = (*MILESTONE_COLUMNS, "pipeline", "won_revenue", "won_deals")
_SOURCE_SEG = "channel, campaign, form_id, event_key, currency"
_SOURCE_SUMS = ", ".join(f"sum({c})" for c in SOURCE_COLUMNS)
_SOURCE_STAGING = StagingTable(
    "rb_source_cohort",
    "day date, channel text, campaign text, form_id text, event_key text, currency text, "
    + ", ".join(f"{c} bigint" for c in SOURCE_COLUMNS[:8])
    + ", pipeline numeric, won_revenue numeric, won_deals bigint",
    target="source_cohort",
    keys=("grain", "period", "channel", "campaign", "form_id", "event_key", "currency"),
    values=SOURCE_COLUMNS,
    source=f"SELECT 'd', day, {_SOURCE_SEG}, {_SOURCE_SUMS} FROM rb_source_cohort "
    f"GROUP BY day, {_SOURCE_SEG} UNION ALL "
    f"SELECT 'm', date_trunc('month', day::timestamp)::date, {_SOURCE_SEG}, {_SOURCE_SUMS} "
    f"FROM rb_source_cohort GROUP BY date_trunc('month', day::timestamp)::date, {_SOURCE_SEG}",
)


class SourcesProjection(LeadProjection):
    """Per first-touch source and inquiry cohort (day and month rows): milestone counts
    (currency ''), and open pipeline, won revenue and won deals per currency."""

    name = "sources"
    tables = ("source_cohort",)

    def collect(self, acc: Any, f: Fact, st: LeadJourney, fx: Effects) -> None:
        if st.inquiry_at is None:
            return
        if not (fx.new_milestones or fx.outcomes or fx.retracted or fx.cohort_money):
            return
        seg = (st.inquiry_at.date(), st.channel, st.campaign, st.form_id, st.event_key)
        if fx.new_milestones or fx.outcomes or fx.retracted:
            row = _source_row(acc, (*seg, NO_CURRENCY))
            for ms in (*fx.new_milestones, *fx.outcomes):
                row[_MILESTONE_INDEX[ms]] += 1
            for ms in fx.retracted:
                row[_MILESTONE_INDEX[ms]] -= 1
        for currency, pipeline, won, deals in fx.cohort_money:
            row = _source_row(acc, (*seg, currency))
            row[8] += exact_decimal(pipeline)
            row[9] += exact_decimal(won)
            row[10] += deals

    def records(self, acc: Any, states: dict[str, LeadJourney], touched: set[str]) -> Records:
        return [(_SOURCE_STAGING, count_rows(acc))]


def _source_row(acc: dict[tuple[Any, ...], list[Any]], key: tuple[Any, ...]) -> list[Any]:
    row = acc.get(key)
    if row is None:
        row = acc[key] = [0, 0, 0, 0, 0, 0, 0, 0, Decimal(0), Decimal(0), 0]
    return row


# -- velocity -----------------------------------------------------------------------------

# Insert-only: COPY straight into the table.
_STAY = StagingTable(
    "stage_stay",
    "lead_id uuid, stage text, entered_at timestamptz, exited_at timestamptz, seconds float8, "
    "channel text, campaign text",
)


class VelocityProjection(LeadProjection):
    """Every finished stay in a stage, with its length (median/p90 are taken at query time)."""

    name = "velocity"
    tables = ("stage_stay",)

    def start(self) -> Any:
        return []

    def collect(self, acc: Any, f: Fact, st: LeadJourney, fx: Effects) -> None:
        t = fx.transition
        if t is not None and t.from_stage is not None and t.seconds is not None:
            assert t.entered_from_at is not None
            acc.append(
                (
                    f.lead_id,
                    t.from_stage,
                    t.entered_from_at,
                    t.at,
                    t.seconds,
                    st.channel,
                    st.campaign,
                )
            )

    def records(self, acc: Any, states: dict[str, LeadJourney], touched: set[str]) -> Records:
        return [(_STAY, acc)]


# -- attribution ----------------------------------------------------------------------------

_ATTRIBUTION_STAGING = StagingTable(
    "rb_attribution_revenue",
    "won_day date, model text, channel text, campaign text, currency text, revenue numeric, "
    "credit float8",
    target="attribution_revenue",
    keys=("won_day", "model", "channel", "campaign", "currency"),
    values=("revenue", "credit"),
)


class AttributionProjection(LeadProjection):
    """Won revenue spread over each lead's touches under every attribution model."""

    name = "attribution"
    tables = ("attribution_revenue",)

    def wants(self, event_type: str) -> bool:
        return event_type in WON_EVENTS  # the only events whose fold attributes revenue

    def collect(self, acc: Any, f: Fact, st: LeadJourney, fx: Effects) -> None:
        if not fx.attributed:
            return
        day = f.occurred_at.date()
        for model, shares in fx.attributed.items():
            for channel, campaign, revenue, credit in shares:
                key = (day, model, channel, campaign, fx.currency)
                row = acc.get(key)
                if row is None:
                    row = acc[key] = [Decimal(0), 0.0]
                row[0] += exact_decimal(revenue)
                row[1] += credit

    def records(self, acc: Any, states: dict[str, LeadJourney], touched: set[str]) -> Records:
        return [(_ATTRIBUTION_STAGING, count_rows(acc))]


# -- stuck leads ------------------------------------------------------------------------------

_CURRENT_COLUMNS = (
    "stage",
    "stage_entered_at",
    "inquiry_at",
    "channel",
    "campaign",
    "rep_id",
    "team_id",
    "is_open",
)
_CURRENT_STAGING = StagingTable(
    "rb_lead_current",
    "lead_id uuid, stage text, stage_entered_at timestamptz, inquiry_at timestamptz, "
    "channel text, campaign text, rep_id text, team_id text, is_open bool",
    target="lead_current",
    keys=("lead_id",),
    values=_CURRENT_COLUMNS,
    adds=False,
)


class StuckProjection(LeadProjection):
    """Each lead's current stage and since when: stuck leads and lead age are read from it."""

    name = "stuck"
    tables = ("lead_current",)
    needs_effects = False

    def wants(self, event_type: str) -> bool:
        # Nothing to count per event: the rows are the touched leads that have a stage (a
        # stage, once entered, is never left for none).
        return False

    def collect(self, acc: Any, f: Fact, st: LeadJourney, fx: Effects) -> None:
        """Never called (``wants`` is False): the touched leads are written."""

    def records(self, acc: Any, states: dict[str, LeadJourney], touched: set[str]) -> Records:
        rows = []
        for lid in touched:
            s = states[lid]
            if s.stage is None:
                continue
            rows.append(
                (
                    lid,
                    s.stage,
                    s.stage_at,
                    s.inquiry_at,
                    s.channel,
                    s.campaign,
                    s.rep_id,
                    s.team_id,
                    s.open,
                )
            )
        return [(_CURRENT_STAGING, rows)]


def all_projections() -> list[LeadProjection]:
    """The six members of one ``LeadFold`` group (a fresh group per call)."""
    group = LeadFold()
    return [
        FunnelProjection(group),
        SourcesProjection(group),
        VelocityProjection(group),
        AttributionProjection(group),
        RepsProjection(group),
        StuckProjection(group),
    ]


PROJECTION_NAMES: tuple[str, ...] = (
    "funnel",
    "sources",
    "velocity",
    "attribution",
    "reps",
    "stuck",
)

# Every table the group writes: what a rebuild clears and recomputes (the bench and the
# rebuild-equivalence test compare them row for row).
PROJECTION_TABLES: tuple[str, ...] = (
    "analytics_fold",
    "funnel_cohort",
    "funnel_flow",
    "source_cohort",
    "stage_stay",
    "attribution_revenue",
    "rep_daily",
    "rep_reasons",
    "sla_daily",
    "rep_fact",
    "sla_fact",
    "lead_current",
)
# The columns of ``lead_event_log`` a bulk load (COPY) fills; the position is the log's own.
LOG_COPY_COLUMNS: tuple[str, ...] = (
    "event_id",
    "lead_id",
    "producer",
    "event_type",
    "occurred_at",
    "recorded_at",
    "payload",
)
