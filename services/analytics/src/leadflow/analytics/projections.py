"""The analytics read models: six kernel ``Projection``s fed from ``lead_event_log``.

Each projection keeps its own per-lead state (``analytics_lead_state``, keyed by projection
name) so it can be rebuilt alone. A batch costs a fixed handful of statements: one read of
the batch's lead states, then one multi-row upsert per table (``unnest`` arrays with
``ON CONFLICT ... DO UPDATE SET n = n + EXCLUDED.n``). The log is read, and tables written,
through the raw asyncpg connection under the runner's transaction, because SQLAlchemy's
per-row result processing costs more than the projection arithmetic itself.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, ClassVar, cast

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from leadflow.analytics.domain import (
    UNKNOWN,
    Effects,
    Fact,
    LeadState,
    fold,
)
from leadflow.events.envelope import Envelope
from leadflow.events.store import StoredEvent


async def raw_connection(conn: AsyncConnection) -> Any:
    """The asyncpg connection under ``conn`` (same transaction)."""
    fairy = await conn.get_raw_connection()
    return fairy.driver_connection


@dataclass(slots=True)
class LoggedEvent:
    """A ``lead_event_log`` row as the projection runner sees it: a position and a ``Fact``.

    Duck-types the kernel's ``StoredEvent`` (the runner only reads ``position``); the full
    envelope is decoded only when someone asks for it.
    """

    position: int
    fact: Fact
    event_id: str
    producer: str

    @property
    def envelope(self) -> Envelope:
        f = self.fact
        return Envelope.from_dict(
            {
                "event_id": self.event_id,
                "event_type": f.event_type,
                "lead_id": f.lead_id,
                "occurred_at": f.occurred_at,
                "producer": self.producer,
                "payload": dict(f.payload),
            }
        )


_READ_LOG = (
    "SELECT global_position, lead_id::text, event_type, occurred_at, payload::text, "
    "event_id::text, producer FROM lead_event_log WHERE global_position > $1 "
    "ORDER BY global_position LIMIT $2"
)


async def read_log(conn: AsyncConnection, after_position: int, limit: int) -> Sequence[StoredEvent]:
    """The projections' event source: the analytics log after a position."""
    apg = await raw_connection(conn)
    rows = await apg.fetch(_READ_LOG, after_position, limit)
    loads = orjson.loads
    out = [
        LoggedEvent(r[0], Fact(r[0], r[1], r[2], r[3], loads(r[4])), r[5], r[6]) for r in rows
    ]
    return cast(Sequence[StoredEvent], out)


async def log_head(conn: AsyncConnection) -> int:
    apg = await raw_connection(conn)
    return int(await apg.fetchval("SELECT coalesce(max(global_position), 0) FROM lead_event_log"))


def fact_of(event: Any) -> Fact:
    if isinstance(event, LoggedEvent):
        return event.fact
    env: Envelope = event.envelope
    return Fact(
        event.position,
        str(env.lead_id),
        env.event_type,
        env.occurred_at,
        env.payload.model_dump(mode="json"),
    )


# -- the shared shape -----------------------------------------------------------------------


def _upsert(table: str, keys: Sequence[str], keytypes: Sequence[str], vals: Sequence[str],
            valtypes: Sequence[str]) -> str:
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


class LeadProjection:
    """Folds each event into the lead's state and lets the subclass count the effects."""

    name: str
    tables: ClassVar[tuple[str, ...]]
    keeps_touches: ClassVar[bool] = False

    async def apply(self, conn: AsyncConnection, events: Sequence[StoredEvent]) -> None:
        apg = await raw_connection(conn)
        facts = [fact_of(e) for e in events]
        ids = list({f.lead_id for f in facts})
        rows = await apg.fetch(
            "SELECT lead_id::text, state::text FROM analytics_lead_state "
            "WHERE projection = $1 AND lead_id = ANY($2::uuid[])",
            self.name,
            ids,
        )
        states = {r[0]: LeadState.from_json(orjson.loads(r[1])) for r in rows}
        acc = self.start()
        for f in facts:
            st = states.get(f.lead_id)
            if st is None:
                st = states[f.lead_id] = LeadState()
            fx = fold(st, f, attribute=self.keeps_touches)
            if not self.keeps_touches and st.touches:
                st.touches.clear()
            self.collect(acc, f, st, fx)
        await apg.execute(
            "INSERT INTO analytics_lead_state (projection, lead_id, state) "
            "SELECT $1, * FROM unnest($2::uuid[], $3::jsonb[]) "
            "ON CONFLICT (projection, lead_id) DO UPDATE SET state = EXCLUDED.state",
            self.name,
            list(states),
            [orjson.dumps(s.to_json()).decode() for s in states.values()],
        )
        await self.write(apg, acc, states)

    async def clear(self, conn: AsyncConnection) -> None:
        apg = await raw_connection(conn)
        await apg.execute("DELETE FROM analytics_lead_state WHERE projection = $1", self.name)
        for table in self.tables:
            await apg.execute(f"TRUNCATE {table}")

    def start(self) -> Any:
        return defaultdict(lambda: defaultdict(list))

    def collect(self, acc: Any, f: Fact, st: LeadState, fx: Effects) -> None:
        raise NotImplementedError

    async def write(self, apg: Any, acc: Any, states: dict[str, LeadState]) -> None:
        raise NotImplementedError


def _bump(counters: dict[tuple[Any, ...], list[Any]], key: tuple[Any, ...], width: int,
          index: int, amount: float = 1) -> None:
    row = counters.get(key)
    if row is None:
        row = counters[key] = [0] * width
    row[index] += amount


def _day(at: datetime) -> date:
    return at.date()


# -- funnel -------------------------------------------------------------------------------

_FUNNEL_COHORT = _upsert("funnel_cohort", ["cohort_day", "channel", "campaign", "milestone"],
                         ["date", "text", "text", "text"], ["leads"], ["bigint"])
_FUNNEL_FLOW = _upsert("funnel_flow", ["day", "channel", "campaign", "from_stage", "to_stage",
                                       "via"],
                       ["date", "text", "text", "text", "text", "text"], ["n"], ["bigint"])


class FunnelProjection(LeadProjection):
    """Milestones reached per inquiry cohort, and stage-to-stage flows per day."""

    name = "funnel"
    tables = ("funnel_cohort", "funnel_flow")

    def start(self) -> Any:
        return ({}, {})

    def collect(self, acc: Any, f: Fact, st: LeadState, fx: Effects) -> None:
        cohort, flow = acc
        day = st.cohort_day
        if day is not None:
            for m in (*fx.new_milestones, *fx.outcomes):
                _bump(cohort, (day, st.channel, st.campaign, m), 1, 0)
        t = fx.transition
        if t is not None:
            key = (_day(t.at), st.channel, st.campaign, t.from_stage or "(start)", t.to_stage,
                   f.event_type)
            _bump(flow, key, 1, 0)

    async def write(self, apg: Any, acc: Any, states: dict[str, LeadState]) -> None:
        await _add(apg, _FUNNEL_COHORT, acc[0])
        await _add(apg, _FUNNEL_FLOW, acc[1])


# -- sources ------------------------------------------------------------------------------

SOURCE_COLUMNS = ("inquiries", "mqls", "sals", "sqls", "opportunities", "won", "lost",
                  "disqualified", "pipeline", "won_revenue")
_SOURCE_INDEX = {
    "inquiry": 0, "mql": 1, "sal": 2, "sql": 3, "opportunity": 4, "won": 5, "lost": 6,
    "disqualified": 7,
}
_SOURCES = _upsert("source_cohort", ["cohort_day", "channel", "campaign", "form_id", "event_key"],
                   ["date", "text", "text", "text", "text"], list(SOURCE_COLUMNS),
                   ["bigint"] * 8 + ["numeric", "numeric"])


class SourcesProjection(LeadProjection):
    """Per first-touch source and inquiry cohort: milestone counts, pipeline and won revenue."""

    name = "sources"
    tables = ("source_cohort",)

    def start(self) -> Any:
        return {}

    def collect(self, acc: Any, f: Fact, st: LeadState, fx: Effects) -> None:
        day = st.cohort_day
        if day is None:
            return
        if not (fx.new_milestones or fx.outcomes or fx.cohort_pipeline or fx.cohort_won):
            return
        key = (day, st.channel, st.campaign, st.form_id, st.event_key)
        for m in (*fx.new_milestones, *fx.outcomes):
            _bump(acc, key, 10, _SOURCE_INDEX[m])
        if fx.cohort_pipeline:
            _bump(acc, key, 10, 8, fx.cohort_pipeline)
        if fx.cohort_won:
            _bump(acc, key, 10, 9, fx.cohort_won)

    async def write(self, apg: Any, acc: Any, states: dict[str, LeadState]) -> None:
        await _add(apg, _SOURCES, acc)


# -- velocity -----------------------------------------------------------------------------


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
            acc.append((f.lead_id, t.from_stage, t.entered_from_at, t.at, t.seconds, st.channel,
                        st.campaign))

    async def write(self, apg: Any, acc: Any, states: dict[str, LeadState]) -> None:
        if not acc:
            return
        cols = list(zip(*acc, strict=True))
        await apg.execute(
            "INSERT INTO stage_stay (lead_id, stage, entered_at, exited_at, seconds, channel, "
            "campaign) SELECT * FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], "
            "$4::timestamptz[], $5::float8[], $6::text[], $7::text[])",
            *[list(c) for c in cols],
        )


# -- attribution ----------------------------------------------------------------------------

_ATTRIBUTION = _upsert("attribution_revenue", ["won_day", "model", "channel", "campaign"],
                       ["date", "text", "text", "text"], ["revenue", "credit"],
                       ["numeric", "float8"])


class AttributionProjection(LeadProjection):
    """Won revenue spread over each lead's touches under every attribution model."""

    name = "attribution"
    tables = ("attribution_revenue",)
    keeps_touches = True

    def start(self) -> Any:
        return {}

    def collect(self, acc: Any, f: Fact, st: LeadState, fx: Effects) -> None:
        if not fx.attributed:
            return
        day = _day(f.occurred_at)
        for model, shares in fx.attributed.items():
            for channel, campaign, revenue, credit in shares:
                key = (day, model, channel, campaign)
                _bump(acc, key, 2, 0, revenue)
                _bump(acc, key, 2, 1, credit)

    async def write(self, apg: Any, acc: Any, states: dict[str, LeadState]) -> None:
        await _add(apg, _ATTRIBUTION, acc)


# -- reps and SLA ------------------------------------------------------------------------------

REP_COLUMNS = ("assigned", "accepted", "rejected", "recycled", "sqls", "opportunities", "won",
               "lost", "won_revenue")
_REP_EVENT = {
    "lead.assigned": 0, "lead.reassigned": 0, "lead.accepted": 1, "lead.rejected": 2,
    "lead.recycled": 3, "lead.sales_qualified": 4, "opportunity.opened": 5, "deal.won": 6,
    "deal.lost": 7,
}
_REASON_KIND = {"lead.rejected": "rejected", "lead.recycled": "recycled", "deal.lost": "lost"}
SLA_COLUMNS = ("started", "warned", "breached", "met_on_time", "met_late", "escalations",
               "elapsed_seconds")
_SLA_EVENT = {"sla.started": 0, "sla.warning": 1, "sla.breached": 2,
              "sla.escalation_raised": 5}
_REPS = _upsert("rep_daily", ["day", "rep_id", "team_id"], ["date", "text", "text"],
                list(REP_COLUMNS), ["bigint"] * 8 + ["numeric"])
_REASONS = _upsert("rep_reasons", ["day", "rep_id", "team_id", "kind", "reason"],
                   ["date", "text", "text", "text", "text"], ["n"], ["bigint"])
_SLA = _upsert("sla_daily", ["day", "policy_id", "team_id", "rep_id"],
               ["date", "text", "text", "text"], list(SLA_COLUMNS), ["bigint"] * 6 + ["float8"])


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
        reps, reasons, sla = acc
        et, p, day = f.event_type, f.payload, _day(f.occurred_at)
        idx = _REP_EVENT.get(et)
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
        if et.startswith("sla.") and p.get("policy_id"):
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
    return [FunnelProjection(), SourcesProjection(), VelocityProjection(),
            AttributionProjection(), RepsProjection(), StuckProjection()]


PROJECTION_NAMES: tuple[str, ...] = (
    "funnel", "sources", "velocity", "attribution", "reps", "stuck",
)
