"""The analytics fold group: the six projections fed from ``lead_event_log`` in ONE pass.

The six projections form one kernel ``ProjectionGroup`` (``LeadFold``): the runner always
moves them together, reads and decodes each batch of the log once, and the group folds every
event once into the lead's state (``analytics_fold``, one row per lead, shared by all six)
and hands the ``Effects`` to each member, which only counts them. Rebuilding any member
replays the log once for the whole group (the same cost as rebuilding one).

A batch costs a fixed handful of statements: one read of the batch's lead states, one COPY
per table into a session temp table (``staging``) and one multi-statement merge. The log is
read as plain tuples (payload decoded with orjson, no pydantic envelope) on the runner's
``Tx``. ``FoldBatch`` (fold + collect + rows) is
shared with the rebuild path in ``rebuild.py``, which keeps the states in memory across
batches.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar, cast

import orjson

from leadflow.analytics.domain import Effects, Fact, LeadJourney, fold
from leadflow.analytics.staging import Records, StagingTable, write_records
from leadflow.events.envelope import Envelope
from leadflow.events.projection import Projection
from leadflow.events.sql import Tx
from leadflow.events.store import StoredEvent


class LoggedEvent(Fact):
    """A ``lead_event_log`` row as the runner sees it: a ``Fact`` (it has ``position``).

    It stands in for the kernel's ``StoredEvent`` (it has ``position``); projections here work
    on the fact itself and never build a pydantic envelope on this path.
    """

    __slots__ = ()


# ``occurred_at`` comes as ISO 8601 text in UTC, whatever the session's TimeZone and
# DateStyle: ``datetime.fromisoformat`` parses it in less than half the CPU time the driver
# takes to decode a binary timestamptz (a rebuild reads millions).
_READ_LOG = (
    "SELECT global_position, lead_id::text, event_type, "
    "to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US+00:00'), "
    "payload::text "
    "FROM lead_event_log WHERE global_position > :after ORDER BY global_position LIMIT :limit"
)


async def read_batch(tx: Tx, after_position: int, limit: int) -> list[LoggedEvent]:
    """The log after a position (keyset paging), payloads decoded with orjson."""
    rows = await tx.fetch(_READ_LOG, after=after_position, limit=limit)
    loads = orjson.loads
    parse_time = datetime.fromisoformat
    new = tuple.__new__
    return [new(LoggedEvent, (r[0], r[1], r[2], parse_time(r[3]), loads(r[4]))) for r in rows]


async def read_log(tx: Tx, after_position: int, limit: int) -> Sequence[StoredEvent]:
    """The projections' event source: the analytics log after a position (keyset paging)."""
    out = await read_batch(tx, after_position, limit)
    return cast(Sequence[StoredEvent], out)


async def log_head(tx: Tx) -> int:
    return int(await tx.fetchval("SELECT coalesce(max(global_position), 0) FROM lead_event_log"))


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


FOLD_STAGING = StagingTable(
    "rb_analytics_fold",
    "lead_id uuid, state text",
    target="analytics_fold",
    keys=("lead_id",),
    values=("state",),
    adds=False,
)


async def load_states(tx: Tx, lead_ids: Sequence[str]) -> dict[str, LeadJourney]:
    """The stored fold state of these leads (absent = never seen)."""
    if not lead_ids:
        return {}
    rows = await tx.fetch(
        "SELECT lead_id::text, state FROM analytics_fold WHERE lead_id = ANY(CAST(:ids AS uuid[]))",
        ids=lead_ids,
    )
    loads = orjson.loads
    return {r[0]: LeadJourney.from_json(loads(r[1])) for r in rows}


Collector = tuple[Callable[[Any, Fact, LeadJourney, Effects], None], Any]


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

    def fold(self, facts: Sequence[Fact], states: dict[str, LeadJourney]) -> None:
        by_type = self._by_type
        touched = self.touched
        get = states.get
        for f in facts:
            lid = f.lead_id
            st = get(lid)
            if st is None:
                st = states[lid] = LeadJourney()
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

    def records(self, states: dict[str, LeadJourney], leads: set[str] | None = None) -> Records:
        """Everything the batch writes, as rows (a snapshot: ``states`` may move on): the
        counts, and the per-lead rows (fold state, current stage) of ``leads`` (default:
        the leads this batch touched)."""
        leads = self.touched if leads is None else leads
        dumps = orjson.dumps
        out: Records = [
            (
                FOLD_STAGING,
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
        self, tx: Tx, members: Sequence[Projection], events: Sequence[StoredEvent]
    ) -> None:
        facts = [fact_of(e) for e in events]
        states = await load_states(tx, list({f.lead_id for f in facts}))
        batch = FoldBatch(members)
        batch.fold(facts, states)
        await write_records(tx, batch.records(states))

    async def clear(self, tx: Tx) -> None:
        await tx.execute("TRUNCATE analytics_fold")


class LeadProjection(ABC):
    """A member of the ``LeadFold`` group: counts the effects of each folded event."""

    name: str
    tables: ClassVar[tuple[str, ...]]

    def __init__(self, group: LeadFold) -> None:
        self.group = group

    async def apply(self, tx: Tx, events: Sequence[StoredEvent]) -> None:
        """Alone (outside the runner, which always applies the whole group): fold for me only."""
        await self.group.apply(tx, [self], events)

    async def clear(self, tx: Tx) -> None:
        await tx.execute(f"TRUNCATE {', '.join(self.tables)}")

    # Collected only for events it wants, and (needs_effects) only when the fold of the
    # event had an effect besides the state (a transition, milestones, amounts, attribution).
    needs_effects: ClassVar[bool] = True

    def wants(self, event_type: str) -> bool:
        return True

    def start(self) -> Any:
        return {}

    @abstractmethod
    def collect(self, acc: Any, f: Fact, st: LeadJourney, fx: Effects) -> None:
        """Add one folded event's effects to this projection's batch accumulator."""

    @abstractmethod
    def records(self, acc: Any, states: dict[str, LeadJourney], touched: set[str]) -> Records:
        """The batch accumulator as rows per stage (each COPYed, then merged into a table);
        ``touched`` = the leads the batch folded, ``states`` has their state after it."""


def count_rows(counters: dict[tuple[Any, ...], Any]) -> list[tuple[Any, ...]]:
    return [(*k, *v) for k, v in counters.items()]


def exact_decimal(value: float) -> Decimal:
    """Money as an exact decimal, so sums do not depend on how the log was batched."""
    return Decimal(repr(float(value)))


NO_CURRENCY = ""  # the currency key of count rows: money rows carry their own currency
