"""The analytics read models: six kernel ``Projection``s fed from ``lead_event_log`` in ONE pass.

The six projections form one kernel ``ProjectionGroup`` (``LeadFold``): the runner always
moves them together, reads and decodes each batch of the log once, and the group folds every
event once into the lead's state (``analytics_fold``, one row per lead, shared by all six)
and hands the ``Effects`` to each member, which only counts them. Rebuilding any member
replays the log once for the whole group (the same cost as rebuilding one).

A batch costs a fixed handful of statements: one read of the batch's lead states, one COPY
per table into a session temp table (a ``Stage``) and one multi-statement merge
(``INSERT ... SELECT ... ON CONFLICT ... DO UPDATE SET n = t.n + EXCLUDED.n``); the
insert-only stage stays are COPYed straight in. The log is read as plain tuples (payload
decoded with orjson, no pydantic envelope) through the raw asyncpg connection under the
runner's transaction. ``FoldBatch`` (fold + collect + rows) is shared with the rebuild path
in ``rebuild.py``, which keeps the states in memory across batches.

Counts are kept as rollups: per day, ISO week and month (``grain`` d/w/m) and per
(channel, campaign) plus the channel, campaign and grand totals (segment ``''``), so a
report reads whole periods from the coarse rows and only the edge days from daily rows.
Python collects them per (channel, campaign, day) only; the merge rolls them up in SQL.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar, cast

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from leadflow.analytics.domain import (
    MILESTONES,
    UNKNOWN,
    WON_EVENTS,
    Effects,
    Fact,
    LeadState,
    fold,
)
from leadflow.events.db import driver_connection
from leadflow.events.envelope import Envelope
from leadflow.events.projection import Projection
from leadflow.events.store import StoredEvent


class LoggedEvent(Fact):
    """A ``lead_event_log`` row as the runner sees it: a ``Fact`` (it has ``position``).

    It stands in for the kernel's ``StoredEvent`` (it has ``position``); projections here work
    on the fact itself and never build a pydantic envelope on this path.
    """

    __slots__ = ()


# ``occurred_at`` comes as ISO 8601 text in UTC, whatever the session's TimeZone and
# DateStyle: ``datetime.fromisoformat`` parses it in less than half the CPU time asyncpg
# takes to decode a binary timestamptz (a rebuild reads millions).
_READ_LOG = (
    "SELECT global_position, lead_id::text, event_type, "
    "to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US+00:00'), "
    "payload::text "
    "FROM lead_event_log WHERE global_position > $1 ORDER BY global_position LIMIT $2"
)


async def read_batch(apg: Any, after_position: int, limit: int) -> list[LoggedEvent]:
    """The log after a position (keyset paging), payloads decoded with orjson."""
    rows = await apg.fetch(_READ_LOG, after_position, limit)
    loads = orjson.loads
    parse_time = datetime.fromisoformat
    new = tuple.__new__
    return [new(LoggedEvent, (r[0], r[1], r[2], parse_time(r[3]), loads(r[4]))) for r in rows]


async def read_log(conn: AsyncConnection, after_position: int, limit: int) -> Sequence[StoredEvent]:
    """The projections' event source: the analytics log after a position (keyset paging)."""
    out = await read_batch(await driver_connection(conn), after_position, limit)
    return cast(Sequence[StoredEvent], out)


async def log_head(conn: AsyncConnection) -> int:
    apg = await driver_connection(conn)
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


# -- staging: COPY into a temp table, merge with one set-based statement -----------------------


class Stage:
    """A session temp table a batch's rows are COPYed into, and how they are merged into a
    projection table; without ``target`` the rows are COPYed straight into ``table``
    (insert-only tables).

    ``source`` is a SELECT over the stage giving ``keys`` then ``values`` (default: those
    columns of the stage); with ``adds`` the values are added to a row already there
    (counts), otherwise they replace it (a lead's row). Two merges are derived from it:

    - ``merge``: ``INSERT ... ON CONFLICT DO UPDATE``, correct whoever else writes the
      table meanwhile (the live loop);
    - ``merge_locked``: an ``UPDATE ... FROM`` of the rows already there and a plain
      ``INSERT`` of the others, in one statement. Correct only while nobody else can write
      the table, i.e. under the group's checkpoint locks (the rebuild's chunks), and about
      half the cost there: a speculative ``ON CONFLICT`` insertion costs 2-3x a plain one,
      and in a rebuild nearly every row is new.

    COPY is several times cheaper than a multi-row ``INSERT ... unnest``: asyncpg checks
    every element of an array parameter but streams COPY records straight to the codec."""

    __slots__ = ("columns", "ddl", "merge", "merge_locked", "table")

    def __init__(
        self,
        table: str,
        columns: str,
        *,
        target: str | None = None,
        keys: Sequence[str] = (),
        values: Sequence[str] = (),
        source: str | None = None,
        adds: bool = True,
    ) -> None:
        self.table = table
        self.columns = tuple(c.split()[0] for c in columns.split(","))
        # ON COMMIT DELETE ROWS: a stage is empty at the start of every transaction.
        self.ddl = f"CREATE TEMP TABLE IF NOT EXISTS {table} ({columns}) ON COMMIT DELETE ROWS"
        self.merge: str | None = None
        self.merge_locked: str | None = None
        if target is None:
            return
        cols = ", ".join((*keys, *values))
        select = source or f"SELECT {cols} FROM {table}"
        if adds:
            sets = ", ".join(f"{v} = t.{v} + EXCLUDED.{v}" for v in values)
            locked_sets = ", ".join(f"{v} = t.{v} + s.{v}" for v in values)
        else:
            sets = ", ".join(f"{v} = EXCLUDED.{v}" for v in values)
            locked_sets = ", ".join(f"{v} = s.{v}" for v in values)
        self.merge = (
            f"INSERT INTO {target} AS t ({cols}) {select} "
            f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {sets}"
        )
        on_s = " AND ".join(f"t.{k} = s.{k}" for k in keys)
        on_u = " AND ".join(f"u.{k} = s.{k}" for k in keys)
        self.merge_locked = (
            f"WITH s ({cols}) AS MATERIALIZED ({select}), "
            f"u AS (UPDATE {target} AS t SET {locked_sets} FROM s WHERE {on_s} "
            f"RETURNING {', '.join(f't.{k}' for k in keys)}) "
            f"INSERT INTO {target} ({cols}) SELECT {cols} FROM s "
            f"WHERE NOT EXISTS (SELECT FROM u WHERE {on_u})"
        )


Records = list[tuple[Stage, list[tuple[Any, ...]]]]


async def write_records(apg: Any, records: Records, *, locked: bool = False) -> None:
    """COPY each stage's rows and merge them: the temp stages are created if this session
    has none yet and emptied first (one round trip), so a stage only ever holds its rows.

    ``locked``: the caller holds the group's checkpoint locks, so nobody else writes these
    tables before it commits and the cheaper ``merge_locked`` is used."""
    records = [(stage, rows) for stage, rows in records if rows]
    temps = [stage for stage, _ in records if stage.merge is not None]
    if temps:
        await apg.execute(
            ";".join([s.ddl for s in temps] + [f"DELETE FROM {s.table}" for s in temps])
        )
    for stage, rows in records:
        await apg.copy_records_to_table(stage.table, records=rows, columns=stage.columns)
    merges = [stage.merge_locked if locked else stage.merge for stage in temps]
    if merges:
        await apg.execute(";".join(m for m in merges if m is not None))


FOLD_STAGE = Stage(
    "rb_analytics_fold",
    "lead_id uuid, state text",
    target="analytics_fold",
    keys=("lead_id",),
    values=("state",),
    adds=False,
)


async def load_states(apg: Any, lead_ids: Sequence[str]) -> dict[str, LeadState]:
    """The stored fold state of these leads (absent = never seen)."""
    if not lead_ids:
        return {}
    rows = await apg.fetch(
        "SELECT lead_id::text, state FROM analytics_fold WHERE lead_id = ANY($1::uuid[])",
        lead_ids,
    )
    loads = orjson.loads
    return {r[0]: LeadState.from_json(loads(r[1])) for r in rows}


Collector = tuple[Callable[[Any, Fact, LeadState, Effects], None], Any]


class FoldBatch:
    """Folds events into lead states and collects every member's effects, then writes them:
    the leads touched, each member's counts (one COPY + one merge per table)."""

    def __init__(self, members: Sequence[Projection]) -> None:
        self.parts = [cast(LeadProjection, m) for m in members]
        self.accs = [m.start() for m in self.parts]
        self.touched: set[str] = set()
        self._by_type: dict[str, tuple[list[Collector], list[Collector]]] = {}

    def _collectors(self, event_type: str) -> tuple[list[Collector], list[Collector]]:
        """Who counts an event of this type: always, or only when it had effects."""
        always: list[Collector] = []
        on_effects: list[Collector] = []
        for m, acc in zip(self.parts, self.accs, strict=True):
            if m.wants(event_type):
                (on_effects if m.needs_effects else always).append((m.collect, acc))
        return always, on_effects

    def fold(self, facts: Sequence[Fact], states: dict[str, LeadState]) -> None:
        by_type = self._by_type
        touched = self.touched
        get = states.get
        for f in facts:
            lid = f.lead_id
            st = get(lid)
            if st is None:
                st = states[lid] = LeadState()
            touched.add(lid)
            fx = fold(st, f)
            who = by_type.get(f.event_type)
            if who is None:
                who = by_type[f.event_type] = self._collectors(f.event_type)
            for collect, acc in who[0]:
                collect(acc, f, st, fx)
            if who[1] and (
                fx.transition is not None
                or fx.new_milestones
                or fx.outcomes
                or fx.retracted
                or fx.cohort_money
                or fx.attributed
            ):
                for collect, acc in who[1]:
                    collect(acc, f, st, fx)

    def drain(self) -> Records:
        """The insert-only rows collected so far (taken out of the batch): they gain nothing
        from waiting, unlike counts, which add up into fewer rows the longer they collect."""
        out: Records = []
        for m, acc in zip(self.parts, self.accs, strict=True):
            out += m.drain(acc)
        return out

    def records(self, states: dict[str, LeadState], leads: set[str] | None = None) -> Records:
        """Everything the batch writes, as rows (a snapshot: ``states`` may move on): the
        counts, and the per-lead rows (fold state, current stage) of ``leads`` (default:
        the leads this batch touched)."""
        leads = self.touched if leads is None else leads
        dumps = orjson.dumps
        out: Records = [
            (
                FOLD_STAGE,
                [(lid, dumps(states[lid].to_json(datetimes_as_is=True)).decode()) for lid in leads],
            )
        ]
        for m, acc in zip(self.parts, self.accs, strict=True):
            out += m.records(acc, states, leads)
        return out


class LeadFold:
    """The group: folds each event once into the lead's state and feeds every member."""

    name = "analytics"

    async def apply(
        self, conn: AsyncConnection, members: Sequence[Projection], events: Sequence[StoredEvent]
    ) -> None:
        apg = await driver_connection(conn)
        facts = [fact_of(e) for e in events]
        states = await load_states(apg, list({f.lead_id for f in facts}))
        batch = FoldBatch(members)
        batch.fold(facts, states)
        await write_records(apg, batch.records(states))

    async def clear(self, conn: AsyncConnection) -> None:
        apg = await driver_connection(conn)
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
        apg = await driver_connection(conn)
        await apg.execute(f"TRUNCATE {', '.join(self.tables)}")

    # Collected only for events it wants, and (needs_effects) only when the fold of the
    # event had an effect besides the state (a transition, milestones, amounts, attribution).
    needs_effects: ClassVar[bool] = True

    def wants(self, event_type: str) -> bool:
        return True

    def start(self) -> Any:
        return {}

    def drain(self, acc: Any) -> Records:
        """Insert-only rows to write early (and forget); counts stay in ``acc``."""
        return []

    @abstractmethod
    def collect(self, acc: Any, f: Fact, st: LeadState, fx: Effects) -> None:
        """Add one folded event's effects to this projection's batch accumulator."""

    @abstractmethod
    def records(self, acc: Any, states: dict[str, LeadState], touched: set[str]) -> Records:
        """The batch accumulator as rows per stage (each COPYed, then merged into a table);
        ``touched`` = the leads the batch folded, ``states`` has their state after it."""


def _rows(counters: dict[tuple[Any, ...], Any]) -> list[tuple[Any, ...]]:
    return [(*k, *v) for k, v in counters.items()]


def _dec(value: float) -> Decimal:
    """Money as an exact decimal, so sums do not depend on how the log was batched."""
    return Decimal(repr(float(value)))


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
_COHORT_STAGE = Stage(
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
_FLOW_STAGE = Stage(
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

    def collect(self, acc: Any, f: Fact, st: LeadState, fx: Effects) -> None:
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

    def records(self, acc: Any, states: dict[str, LeadState], touched: set[str]) -> Records:
        return [
            (_COHORT_STAGE, _rows(acc[0])),
            (_FLOW_STAGE, [(*k, n) for k, n in acc[1].items()]),
        ]


# -- sources ------------------------------------------------------------------------------

SOURCE_COLUMNS = (*MILESTONE_COLUMNS, "pipeline", "won_revenue", "won_deals")
_SOURCE_SEG = "channel, campaign, form_id, event_key, currency"
_SOURCE_SUMS = ", ".join(f"sum({c})" for c in SOURCE_COLUMNS)
_SOURCE_STAGE = Stage(
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
NO_CURRENCY = ""  # the currency key of count rows: money rows carry their own currency


class SourcesProjection(LeadProjection):
    """Per first-touch source and inquiry cohort (day and month rows): milestone counts
    (currency ''), and open pipeline, won revenue and won deals per currency."""

    name = "sources"
    tables = ("source_cohort",)

    def collect(self, acc: Any, f: Fact, st: LeadState, fx: Effects) -> None:
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
            row[8] += _dec(pipeline)
            row[9] += _dec(won)
            row[10] += deals

    def records(self, acc: Any, states: dict[str, LeadState], touched: set[str]) -> Records:
        return [(_SOURCE_STAGE, _rows(acc))]


def _source_row(acc: dict[tuple[Any, ...], list[Any]], key: tuple[Any, ...]) -> list[Any]:
    row = acc.get(key)
    if row is None:
        row = acc[key] = [0, 0, 0, 0, 0, 0, 0, 0, Decimal(0), Decimal(0), 0]
    return row


# -- velocity -----------------------------------------------------------------------------

# Insert-only: COPY straight into the table.
_STAY = Stage(
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

    def records(self, acc: Any, states: dict[str, LeadState], touched: set[str]) -> Records:
        return [(_STAY, acc)]

    def drain(self, acc: Any) -> Records:
        rows = acc[:]
        acc.clear()
        return [(_STAY, rows)]


# -- attribution ----------------------------------------------------------------------------

_ATTRIBUTION_STAGE = Stage(
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

    def collect(self, acc: Any, f: Fact, st: LeadState, fx: Effects) -> None:
        if not fx.attributed:
            return
        day = f.occurred_at.date()
        for model, shares in fx.attributed.items():
            for channel, campaign, revenue, credit in shares:
                key = (day, model, channel, campaign, fx.currency)
                row = acc.get(key)
                if row is None:
                    row = acc[key] = [Decimal(0), 0.0]
                row[0] += _dec(revenue)
                row[1] += credit

    def records(self, acc: Any, states: dict[str, LeadState], touched: set[str]) -> Records:
        return [(_ATTRIBUTION_STAGE, _rows(acc))]


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
    "late",  # clocks whose verdict is late (breached, or met late without a breach)
    "elapsed_seconds",
)
_SLA_EVENT = {"sla.started": 0, "sla.warning": 1, "sla.breached": 2, "sla.escalation_raised": 5}
# Every reps/SLA row is also keyed by the lead's first-touch channel and campaign, so the
# reps report (and the dashboard's SLA panel) honour the same filters as every other report.
_SEGMENT = "channel text, campaign text"
_REPS_STAGE = Stage(
    "rb_rep_daily",
    f"day date, rep_id text, team_id text, queue_id text, {_SEGMENT}, currency text, "
    + ", ".join(f"{c} bigint" for c in REP_COLUMNS[:8])
    + ", won_revenue numeric",
    target="rep_daily",
    keys=("day", "rep_id", "team_id", "queue_id", "channel", "campaign", "currency"),
    values=REP_COLUMNS,
)
_REASONS_STAGE = Stage(
    "rb_rep_reasons",
    f"day date, rep_id text, team_id text, {_SEGMENT}, kind text, reason text, n bigint",
    target="rep_reasons",
    keys=("day", "rep_id", "team_id", "channel", "campaign", "kind", "reason"),
    values=("n",),
)
_SLA_STAGE = Stage(
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
_REP_FACT = Stage(
    "rep_fact",
    f"lead_id uuid, day date, rep_id text, team_id text, queue_id text, {_SEGMENT}, kind text",
)
_SLA_FACT = Stage(
    "sla_fact",
    f"lead_id uuid, day date, policy_id text, team_id text, rep_id text, {_SEGMENT}, kind text",
)


def _who(p: Any, st: LeadState) -> tuple[str, str]:
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

    def collect(self, acc: Any, f: Fact, st: LeadState, fx: Effects) -> None:
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
                _rep_row(reps, (day, rep, team, queue, *seg, fx.currency))[8] += _dec(fx.won)
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

    def records(self, acc: Any, states: dict[str, LeadState], touched: set[str]) -> Records:
        return [
            (_REPS_STAGE, _rows(acc[0])),
            (_REASONS_STAGE, [(*k, n) for k, n in acc[1].items()]),
            (_SLA_STAGE, _rows(acc[2])),
            (_REP_FACT, acc[3]),
            (_SLA_FACT, acc[4]),
        ]

    def drain(self, acc: Any) -> Records:
        rows = [(_REP_FACT, acc[3][:]), (_SLA_FACT, acc[4][:])]
        acc[3].clear()
        acc[4].clear()
        return rows


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
_CURRENT_STAGE = Stage(
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

    def collect(self, acc: Any, f: Fact, st: LeadState, fx: Effects) -> None:
        """Never called (``wants`` is False): the touched leads are written."""

    def records(self, acc: Any, states: dict[str, LeadState], touched: set[str]) -> Records:
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
        return [(_CURRENT_STAGE, rows)]


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
