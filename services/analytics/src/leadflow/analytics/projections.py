"""The analytics read models: six kernel ``Projection``s fed from ``lead_event_log`` in ONE pass.

The six projections form one kernel ``ProjectionGroup`` (``LeadFold``): the runner always
moves them together, reads and decodes each batch of the log once, and the group folds every
event once into the lead's state (``analytics_fold``, one row per lead, shared by all six)
and hands the ``Effects`` to each member, which only counts them. Rebuilding any member
replays the log once for the whole group (the same cost as rebuilding one).

A batch costs a fixed handful of statements: one read of the batch's lead states, one
multi-row upsert per table (``unnest`` arrays, ``ON CONFLICT ... DO UPDATE SET n = n +
EXCLUDED.n``) and COPY for the insert-only stage stays. The log is read as plain tuples
(payload decoded with orjson, no pydantic envelope) through the raw asyncpg connection
under the runner's transaction.

Counts are kept as rollups: per day, ISO week and month (``grain`` d/w/m) and per
(channel, campaign) plus the channel, campaign and grand totals (segment ``''``), so a
report reads whole periods from the coarse rows and only the edge days from daily rows.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any, ClassVar, cast

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from leadflow.analytics.domain import (
    ALL,
    UNKNOWN,
    Effects,
    Fact,
    LeadState,
    fold,
)
from leadflow.events.envelope import Envelope
from leadflow.events.projection import Projection
from leadflow.events.store import StoredEvent


async def raw_connection(conn: AsyncConnection) -> Any:
    """The asyncpg connection under ``conn`` (same transaction)."""
    fairy = await conn.get_raw_connection()
    return fairy.driver_connection


class LoggedEvent(Fact):
    """A ``lead_event_log`` row as the runner sees it: a ``Fact`` (it has ``position``).

    It stands in for the kernel's ``StoredEvent`` (it has ``position``); projections here work
    on the fact itself and never build a pydantic envelope on this path.
    """

    __slots__ = ()


_READ_LOG = (
    "SELECT global_position, lead_id::text, event_type, occurred_at, payload::text "
    "FROM lead_event_log WHERE global_position > $1 ORDER BY global_position LIMIT $2"
)


async def read_log(conn: AsyncConnection, after_position: int, limit: int) -> Sequence[StoredEvent]:
    """The projections' event source: the analytics log after a position (keyset paging)."""
    apg = await raw_connection(conn)
    rows = await apg.fetch(_READ_LOG, after_position, limit)
    loads = orjson.loads
    new = tuple.__new__
    out = [new(LoggedEvent, (r[0], r[1], r[2], r[3], loads(r[4]))) for r in rows]
    return cast(Sequence[StoredEvent], out)


async def log_head(conn: AsyncConnection) -> int:
    apg = await raw_connection(conn)
    return int(await apg.fetchval("SELECT coalesce(max(global_position), 0) FROM lead_event_log"))


def fact_of(event: Any) -> Fact:
    if isinstance(event, Fact):
        return event
    env: Envelope = event.envelope
    return Fact(
        event.position,
        str(env.lead_id),
        env.event_type,
        env.occurred_at,
        env.payload.model_dump(mode="json"),
    )


# -- the shared shape -----------------------------------------------------------------------


def _upsert(
    table: str,
    keys: Sequence[str],
    keytypes: Sequence[str],
    vals: Sequence[str],
    valtypes: Sequence[str],
) -> str:
    cols = [*keys, *vals]
    types = [*keytypes, *valtypes]
    params = ", ".join(f"${i + 1}::{t}[]" for i, t in enumerate(types))
    updates = ", ".join(f"{v} = {table}.{v} + EXCLUDED.{v}" for v in vals)
    return (
        f"INSERT INTO {table} ({', '.join(cols)}) SELECT * FROM unnest({params}) "
        f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}"
    )


async def _add(apg: Any, sql: str, counters: dict[tuple[Any, ...], list[Any]]) -> None:
    """Write ``key -> [values]`` counters as one multi-row upsert."""
    if not counters:
        return
    items = list(counters.items())
    nkeys = len(items[0][0])
    nvals = len(items[0][1])
    columns = [[k[i] for k, _ in items] for i in range(nkeys)]
    columns += [[v[i] for _, v in items] for i in range(nvals)]
    await apg.execute(sql, *columns)


def _bump(
    counters: dict[tuple[Any, ...], list[Any]],
    key: tuple[Any, ...],
    width: int,
    index: int,
    amount: float = 1,
) -> None:
    row = counters.get(key)
    if row is None:
        row = counters[key] = [0] * width
    row[index] += amount


class _Periods:
    """Day -> (day, ISO week start, month start), memoised: a batch spans few days."""

    __slots__ = ("_cache",)

    def __init__(self) -> None:
        self._cache: dict[date, tuple[date, date, date]] = {}

    def __call__(self, day: date) -> tuple[date, date, date]:
        got = self._cache.get(day)
        if got is None:
            got = self._cache[day] = (day, day - timedelta(days=day.weekday()), day.replace(day=1))
        return got


PERIODS = _Periods()


class LeadFold:
    """The group: folds each event once into the lead's state and feeds every member."""

    name = "analytics"

    async def apply(
        self, conn: AsyncConnection, members: Sequence[Projection], events: Sequence[StoredEvent]
    ) -> None:
        apg = await raw_connection(conn)
        facts = [fact_of(e) for e in events]
        ids = list({f.lead_id for f in facts})
        rows = await apg.fetch(
            "SELECT lead_id::text, state::text FROM analytics_fold WHERE lead_id = ANY($1::uuid[])",
            ids,
        )
        loads = orjson.loads
        states = {r[0]: LeadState.from_json(loads(r[1])) for r in rows}
        parts = [cast(LeadProjection, m) for m in members]
        accs = [(m.collect, m.start()) for m in parts]
        for f in facts:
            st = states.get(f.lead_id)
            if st is None:
                st = states[f.lead_id] = LeadState()
            fx = fold(st, f)
            for collect, acc in accs:
                collect(acc, f, st, fx)
        dumps = orjson.dumps
        await apg.execute(
            "INSERT INTO analytics_fold (lead_id, state) "
            "SELECT * FROM unnest($1::uuid[], $2::text[]::jsonb[]) "
            "ON CONFLICT (lead_id) DO UPDATE SET state = EXCLUDED.state",
            list(states),
            [dumps(s.to_json()).decode() for s in states.values()],
        )
        for m, (_, acc) in zip(parts, accs, strict=True):
            await m.write(apg, acc, states)

    async def clear(self, conn: AsyncConnection) -> None:
        apg = await raw_connection(conn)
        await apg.execute("TRUNCATE analytics_fold")


class LeadProjection(ABC):
    """A member of the ``LeadFold`` group: counts the effects of each folded event."""

    name: str
    tables: ClassVar[tuple[str, ...]]

    def __init__(self, group: LeadFold) -> None:
        self.group = group

    async def apply(self, conn: AsyncConnection, events: Sequence[StoredEvent]) -> None:
        """Alone (outside the runner, which always applies the whole group): fold for me only."""
        await self.group.apply(conn, [self], events)

    async def clear(self, conn: AsyncConnection) -> None:
        apg = await raw_connection(conn)
        for table in self.tables:
            await apg.execute(f"TRUNCATE {table}")

    def start(self) -> Any:
        return {}

    @abstractmethod
    def collect(self, acc: Any, f: Fact, st: LeadState, fx: Effects) -> None:
        """Add one folded event's effects to this projection's batch accumulator."""

    @abstractmethod
    async def write(self, apg: Any, acc: Any, states: dict[str, LeadState]) -> None:
        """Write the batch accumulator (multi-row statements)."""


# -- funnel -------------------------------------------------------------------------------

_FUNNEL_COHORT = _upsert(
    "funnel_cohort",
    ["grain", "channel", "campaign", "period", "milestone"],
    ["text", "text", "text", "date", "text"],
    ["leads"],
    ["bigint"],
)
_FUNNEL_FLOW = _upsert(
    "funnel_flow",
    ["grain", "channel", "campaign", "period", "from_stage", "to_stage", "via"],
    ["text", "text", "text", "date", "text", "text", "text"],
    ["n"],
    ["bigint"],
)


def _cohort_keys(
    periods: tuple[date, date, date], ch: str, cp: str, milestone: str
) -> tuple[tuple[Any, ...], ...]:
    """Rollup rows one cohort count goes to: weeks and months under every segment total,
    days only per (channel, campaign) and grand total (a filtered edge day sums campaigns)."""
    d, w, m = periods
    return (
        ("d", ch, cp, d, milestone),
        ("d", ALL, ALL, d, milestone),
        ("w", ch, cp, w, milestone),
        ("w", ch, ALL, w, milestone),
        ("w", ALL, cp, w, milestone),
        ("w", ALL, ALL, w, milestone),
        ("m", ch, cp, m, milestone),
        ("m", ch, ALL, m, milestone),
        ("m", ALL, cp, m, milestone),
        ("m", ALL, ALL, m, milestone),
    )


def _flow_keys(
    d: date, m: date, ch: str, cp: str, step: tuple[str, str, str]
) -> tuple[tuple[Any, ...], ...]:
    return (
        ("d", ch, cp, d, *step),
        ("d", ALL, ALL, d, *step),
        ("m", ch, cp, m, *step),
        ("m", ch, ALL, m, *step),
        ("m", ALL, cp, m, *step),
        ("m", ALL, ALL, m, *step),
    )


class FunnelProjection(LeadProjection):
    """Milestones reached per inquiry cohort, and stage-to-stage flows per period."""

    name = "funnel"
    tables = ("funnel_cohort", "funnel_flow")

    def start(self) -> Any:
        return ({}, {})

    def collect(self, acc: Any, f: Fact, st: LeadState, fx: Effects) -> None:
        new, outcomes, t = fx.new_milestones, fx.outcomes, fx.transition
        if not (new or outcomes or t):
            return
        cohort, flow = acc
        ch, cp = st.channel, st.campaign
        inquiry_at = st.inquiry_at
        if inquiry_at is not None and (new or outcomes):
            for ms in (*new, *outcomes):
                for key in _cohort_keys(PERIODS(inquiry_at.date()), ch, cp, ms):
                    row = cohort.get(key)
                    if row is None:
                        cohort[key] = [1]
                    else:
                        row[0] += 1
        if t is not None:
            d, _, m = PERIODS(t.at.date())
            step = (t.from_stage or "(start)", t.to_stage, f.event_type)
            for key in _flow_keys(d, m, ch, cp, step):
                row = flow.get(key)
                if row is None:
                    flow[key] = [1]
                else:
                    row[0] += 1

    async def write(self, apg: Any, acc: Any, states: dict[str, LeadState]) -> None:
        await _add(apg, _FUNNEL_COHORT, acc[0])
        await _add(apg, _FUNNEL_FLOW, acc[1])


# -- sources ------------------------------------------------------------------------------

SOURCE_COLUMNS = (
    "inquiries",
    "mqls",
    "sals",
    "sqls",
    "opportunities",
    "won",
    "lost",
    "disqualified",
    "pipeline",
    "won_revenue",
)
_SOURCE_INDEX = {
    "inquiry": 0,
    "mql": 1,
    "sal": 2,
    "sql": 3,
    "opportunity": 4,
    "won": 5,
    "lost": 6,
    "disqualified": 7,
}
_SOURCES = _upsert(
    "source_cohort",
    ["grain", "period", "channel", "campaign", "form_id", "event_key"],
    ["text", "date", "text", "text", "text", "text"],
    list(SOURCE_COLUMNS),
    ["bigint"] * 8 + ["numeric", "numeric"],
)


class SourcesProjection(LeadProjection):
    """Per first-touch source and inquiry cohort (day and month rows): milestone counts,
    pipeline and won revenue."""

    name = "sources"
    tables = ("source_cohort",)

    def collect(self, acc: Any, f: Fact, st: LeadState, fx: Effects) -> None:
        if st.inquiry_at is None:
            return
        if not (fx.new_milestones or fx.outcomes or fx.cohort_pipeline or fx.cohort_won):
            return
        d, _, m = PERIODS(st.inquiry_at.date())
        seg = (st.channel, st.campaign, st.form_id, st.event_key)
        for key in (("d", d, *seg), ("m", m, *seg)):
            for ms in (*fx.new_milestones, *fx.outcomes):
                _bump(acc, key, 10, _SOURCE_INDEX[ms])
            if fx.cohort_pipeline:
                _bump(acc, key, 10, 8, fx.cohort_pipeline)
            if fx.cohort_won:
                _bump(acc, key, 10, 9, fx.cohort_won)

    async def write(self, apg: Any, acc: Any, states: dict[str, LeadState]) -> None:
        await _add(apg, _SOURCES, acc)


# -- velocity -----------------------------------------------------------------------------

_STAY_COLUMNS = ["lead_id", "stage", "entered_at", "exited_at", "seconds", "channel", "campaign"]


class VelocityProjection(LeadProjection):
    """Every finished stay in a stage, with its length (median/p90 are taken at query time)."""

    name = "velocity"
    tables = ("stage_stay",)

    def start(self) -> Any:
        return []

    def collect(self, acc: Any, f: Fact, st: LeadState, fx: Effects) -> None:
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

    async def write(self, apg: Any, acc: Any, states: dict[str, LeadState]) -> None:
        if not acc:
            return
        # Insert-only: COPY is several times cheaper than INSERT ... unnest.
        await apg.copy_records_to_table("stage_stay", records=acc, columns=_STAY_COLUMNS)


# -- attribution ----------------------------------------------------------------------------

_ATTRIBUTION = _upsert(
    "attribution_revenue",
    ["won_day", "model", "channel", "campaign"],
    ["date", "text", "text", "text"],
    ["revenue", "credit"],
    ["numeric", "float8"],
)


class AttributionProjection(LeadProjection):
    """Won revenue spread over each lead's touches under every attribution model."""

    name = "attribution"
    tables = ("attribution_revenue",)

    def collect(self, acc: Any, f: Fact, st: LeadState, fx: Effects) -> None:
        if not fx.attributed:
            return
        day = f.occurred_at.date()
        for model, shares in fx.attributed.items():
            for channel, campaign, revenue, credit in shares:
                key = (day, model, channel, campaign)
                _bump(acc, key, 2, 0, revenue)
                _bump(acc, key, 2, 1, credit)

    async def write(self, apg: Any, acc: Any, states: dict[str, LeadState]) -> None:
        await _add(apg, _ATTRIBUTION, acc)


# -- reps and SLA ------------------------------------------------------------------------------

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
    "elapsed_seconds",
)
_SLA_EVENT = {"sla.started": 0, "sla.warning": 1, "sla.breached": 2, "sla.escalation_raised": 5}
_REPS = _upsert(
    "rep_daily",
    ["day", "rep_id", "team_id"],
    ["date", "text", "text"],
    list(REP_COLUMNS),
    ["bigint"] * 8 + ["numeric"],
)
_REASONS = _upsert(
    "rep_reasons",
    ["day", "rep_id", "team_id", "kind", "reason"],
    ["date", "text", "text", "text", "text"],
    ["n"],
    ["bigint"],
)
_SLA = _upsert(
    "sla_daily",
    ["day", "policy_id", "team_id", "rep_id"],
    ["date", "text", "text", "text"],
    list(SLA_COLUMNS),
    ["bigint"] * 6 + ["float8"],
)


def _who(p: Any, st: LeadState) -> tuple[str, str]:
    rep = p.get("rep_id") or st.rep_id
    team = p.get("team_id") or st.team_id
    return str(rep or UNKNOWN), str(team or UNKNOWN)


class RepsProjection(LeadProjection):
    """Per rep/team and day: hand-off outcomes and reasons; per SLA policy: compliance."""

    name = "reps"
    tables = ("rep_daily", "rep_reasons", "sla_daily")

    def start(self) -> Any:
        return ({}, {}, {})

    def collect(self, acc: Any, f: Fact, st: LeadState, fx: Effects) -> None:
        et = f.event_type
        idx = _REP_EVENT.get(et)
        if idx is None and not et.startswith("sla."):
            return
        reps, reasons, sla = acc
        p, day = f.payload, f.occurred_at.date()
        if idx is not None:
            rep, team = _who(p, st)
            if et in ("lead.assigned", "lead.reassigned"):
                rep, team = st.rep_id, st.team_id
            _bump(reps, (day, rep, team), 9, idx)
            if et == "deal.won":
                _bump(reps, (day, rep, team), 9, 8, fx.won)
            kind = _REASON_KIND.get(et)
            if kind is not None:
                _bump(reasons, (day, rep, team, kind, str(p.get("reason_code") or UNKNOWN)), 1, 0)
            return
        if p.get("policy_id"):
            rep, team = _who(p, st)
            key = (day, str(p["policy_id"]), team, rep)
            if et == "sla.met":
                _bump(sla, key, 7, 3 if p.get("on_time") else 4)
                _bump(sla, key, 7, 6, float(p.get("elapsed_seconds") or 0.0))
            elif et in _SLA_EVENT:
                _bump(sla, key, 7, _SLA_EVENT[et])

    async def write(self, apg: Any, acc: Any, states: dict[str, LeadState]) -> None:
        await _add(apg, _REPS, acc[0])
        await _add(apg, _REASONS, acc[1])
        await _add(apg, _SLA, acc[2])


# -- stuck leads ------------------------------------------------------------------------------


class StuckProjection(LeadProjection):
    """Each lead's current stage and since when: stuck leads and lead age are read from it."""

    name = "stuck"
    tables = ("lead_current",)

    def start(self) -> Any:
        return set()

    def collect(self, acc: Any, f: Fact, st: LeadState, fx: Effects) -> None:
        if st.stage is not None:
            acc.add(f.lead_id)

    async def write(self, apg: Any, acc: Any, states: dict[str, LeadState]) -> None:
        if not acc:
            return
        rows = [(lid, states[lid]) for lid in acc]
        await apg.execute(
            "INSERT INTO lead_current (lead_id, stage, stage_entered_at, inquiry_at, channel, "
            "campaign, rep_id, team_id, is_open) SELECT * FROM unnest($1::uuid[], $2::text[], "
            "$3::timestamptz[], $4::timestamptz[], $5::text[], $6::text[], $7::text[], "
            "$8::text[], $9::bool[]) ON CONFLICT (lead_id) DO UPDATE SET stage = EXCLUDED.stage, "
            "stage_entered_at = EXCLUDED.stage_entered_at, inquiry_at = EXCLUDED.inquiry_at, "
            "channel = EXCLUDED.channel, campaign = EXCLUDED.campaign, rep_id = EXCLUDED.rep_id, "
            "team_id = EXCLUDED.team_id, is_open = EXCLUDED.is_open",
            [r[0] for r in rows],
            [r[1].stage for r in rows],
            [r[1].stage_at for r in rows],
            [r[1].inquiry_at for r in rows],
            [r[1].channel for r in rows],
            [r[1].campaign for r in rows],
            [r[1].rep_id for r in rows],
            [r[1].team_id for r in rows],
            [r[1].open for r in rows],
        )


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
