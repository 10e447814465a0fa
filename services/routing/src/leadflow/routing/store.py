"""SQL for routing's own tables (unqualified names: the connection's search_path is our schema).

Configuration (reps, teams, queues, account owners, rule sets, reason codes) is stored as
validated documents; every admin write bumps ``config_revision`` so replicas can cache the
parsed roster and rule set per revision. Decision state (round-robin credits, open and
daily counts) and each lead's stage and owner live beside them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from leadflow.events.catalogue.common import LeadSnapshot
from leadflow.events.catalogue.routing import RoutingRulesPublished
from leadflow.events.db import DriverSql, json_text
from leadflow.events.documents import Document, DocumentKind
from leadflow.events.envelope import EventPayload
from leadflow.events.lifecycle import Cycle, LeadLifecycle, Stage
from leadflow.routing.domain import (
    LiveState,
    Queue,
    Rep,
    Roster,
    RuleSet,
    Team,
    check_references,
)

# Stages in which a lead is in sales' hands and counts against its owner's open cap.
SALES_OPEN_STAGES: tuple[str, ...] = (
    Stage.MQL.value,
    Stage.SAL.value,
    Stage.SQL.value,
    Stage.OPPORTUNITY.value,
    Stage.ON_HOLD.value,
)
REASON_ACTIONS = ("reject", "lost", "recycle")

M = TypeVar("M", bound=BaseModel)
_DOC_TABLES: dict[type[BaseModel], str] = {Rep: "reps", Team: "teams", Queue: "queues"}


# -- configuration ---------------------------------------------------------------------


async def bump_revision(conn: AsyncConnection) -> int:
    return int(
        await conn.scalar(
            text(
                "UPDATE config_revision SET revision = revision + 1 WHERE id = 1 RETURNING revision"
            )
        )
    )


async def config_revision(conn: AsyncConnection) -> int:
    return int(await conn.scalar(text("SELECT revision FROM config_revision WHERE id = 1")) or 0)


async def put_doc(conn: AsyncConnection, model: BaseModel) -> None:
    table = _DOC_TABLES[type(model)]
    await conn.execute(
        text(
            f"INSERT INTO {table} (id, doc) VALUES (:id, CAST(:doc AS jsonb)) "
            "ON CONFLICT (id) DO UPDATE SET doc = EXCLUDED.doc, updated_at = now()"
        ),
        {"id": model.id, "doc": model.model_dump_json()},  # type: ignore[attr-defined]
    )
    await bump_revision(conn)


async def get_doc(conn: AsyncConnection, cls: type[M], id_: str) -> M | None:
    doc = await conn.scalar(text(f"SELECT doc FROM {_DOC_TABLES[cls]} WHERE id = :id"), {"id": id_})
    return None if doc is None else cls.model_validate(doc)


async def list_docs(conn: AsyncConnection, cls: type[M]) -> list[M]:
    rows = await conn.execute(text(f"SELECT doc FROM {_DOC_TABLES[cls]} ORDER BY id"))
    return [cls.model_validate(r[0]) for r in rows]


async def delete_doc(conn: AsyncConnection, cls: type[BaseModel], id_: str) -> bool:
    result = await conn.execute(text(f"DELETE FROM {_DOC_TABLES[cls]} WHERE id = :id"), {"id": id_})
    await bump_revision(conn)
    return bool(result.rowcount)


async def open_leads_of(conn: AsyncConnection, kind: str, id_: str) -> list[uuid.UUID]:
    """Leads in sales' hands (``SALES_OPEN_STAGES``) owned by this rep, team or queue."""
    column = {"rep": "rep_id", "team": "team_id", "queue": "queue_id"}[kind]
    rows = await conn.execute(
        text(
            f"SELECT lead_id FROM leads WHERE {column} = :id "
            "AND stage = ANY(CAST(:stages AS text[])) ORDER BY assigned_at, lead_id"
        ),
        {"id": id_, "stages": list(SALES_OPEN_STAGES)},
    )
    return [r[0] for r in rows]


async def set_account_owner(conn: AsyncConnection, account_key: str, rep_id: str | None) -> None:
    if rep_id is None:
        await conn.execute(
            text("DELETE FROM account_owners WHERE account_key = :k"), {"k": account_key.lower()}
        )
    else:
        await conn.execute(
            text(
                "INSERT INTO account_owners (account_key, rep_id) VALUES (:k, :r) "
                "ON CONFLICT (account_key) DO UPDATE SET rep_id = EXCLUDED.rep_id, "
                "updated_at = now()"
            ),
            {"k": account_key.lower(), "r": rep_id},
        )
    await bump_revision(conn)


async def account_owners(conn: AsyncConnection) -> dict[str, str]:
    rows = await conn.execute(text("SELECT account_key, rep_id FROM account_owners"))
    return {r[0]: r[1] for r in rows}


# -- the rule set: a kernel versioned document ------------------------------------------


async def roster(conn: AsyncConnection) -> Roster:
    return Roster.of(
        await list_docs(conn, Rep),
        await list_docs(conn, Team),
        await list_docs(conn, Queue),
        await account_owners(conn),
    )


async def _check_rules(conn: AsyncConnection, draft: RuleSet) -> list[dict[str, Any]]:
    """A rule set may only name the reps, teams and queues of the roster in force."""
    present = await roster(conn)
    errors: list[dict[str, Any]] = list(check_references(draft, present))
    if draft.default_queue_id not in present.queues:
        errors.append(
            {"field": "default_queue_id", "message": f"unknown queue {draft.default_queue_id!r}"}
        )
    return errors


async def _rules_published(conn: AsyncConnection, document: Document[RuleSet]) -> EventPayload:
    """``RoutingRulesPublished`` on ``stream_id("routing-rules")``: the version history is an
    event stream other services follow. Publishing also bumps ``config_revision`` (the
    route's ``after_publish``), so every replica's ``ConfigCache`` re-reads the rules."""
    return RoutingRulesPublished(
        rules_version=document.version,
        rules=[r.model_dump(mode="json") for r in document.doc.rules],
        published_by=document.published_by,
    )


RULES: DocumentKind[RuleSet] = DocumentKind(
    name="routing-rules",
    table="rule_sets",
    model=RuleSet,
    event=_rules_published,
    title="rule set",
    builtin=RuleSet,
    check=_check_rules,
    summary={"rules": "jsonb_array_length(doc->'rules')"},
)


async def current_rules(conn: AsyncConnection) -> RuleSet:
    return (await RULES.current(conn)).doc


async def reason_codes(conn: AsyncConnection) -> dict[str, list[str]]:
    rows = await conn.execute(text("SELECT action, code FROM reason_codes ORDER BY action, code"))
    out: dict[str, list[str]] = {a: [] for a in REASON_ACTIONS}
    for action, code in rows:
        out.setdefault(action, []).append(code)
    return out


async def set_reason_codes(conn: AsyncConnection, action: str, codes: Iterable[str]) -> None:
    await conn.execute(text("DELETE FROM reason_codes WHERE action = :a"), {"a": action})
    for code in codes:
        await conn.execute(
            text("INSERT INTO reason_codes (action, code) VALUES (:a, :c)"),
            {"a": action, "c": code},
        )
    await bump_revision(conn)


@dataclass(frozen=True)
class Config:
    revision: int
    roster: Roster
    rules: RuleSet


class ConfigCache:
    """The parsed roster + rule set, re-read only when ``config_revision`` moved."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._cached: Config | None = None
        self._tx: object | None = None

    async def get(self, conn: AsyncConnection, revision: int | None = None) -> Config:
        """The configuration at ``revision`` (read here when not given)."""
        # One revision read per transaction: a consumer batch decides on one configuration.
        tx = conn.get_transaction()
        if self.enabled and tx is not None and tx is self._tx and self._cached is not None:
            return self._cached
        self._tx = tx
        if revision is None:
            revision = await config_revision(conn)
        if self.enabled and self._cached is not None and self._cached.revision == revision:
            return self._cached
        config = Config(revision, await roster(conn), await current_rules(conn))
        self._cached = config
        return config


# -- decision state --------------------------------------------------------------------

# Held by whoever decides (a consumer batch, a reassignment) until its transaction ends:
# replicas take turns, each reading the counts and credits the previous one committed, so
# round-robin stays fair and caps hold across them. Scoped to the schema (tests and
# benchmarks share one database).
_DECISION_LOCK = DriverSql(
    "SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.routing-decisions')), "
    "(SELECT revision FROM config_revision WHERE id = 1)"
)

# Open-lead counts come from ``rep_load`` plus the deltas the ``leads`` trigger appended
# since; the lock holder folds the deltas in while reading them (one statement).
_FOLD_DELTAS = """
    moved AS (DELETE FROM rep_load_delta RETURNING rep_id, delta),
    agg AS (SELECT rep_id, sum(delta)::integer AS d FROM moved GROUP BY rep_id),
    folded AS (
        INSERT INTO rep_load (rep_id, open) SELECT rep_id, d FROM agg ORDER BY rep_id
        ON CONFLICT (rep_id) DO UPDATE SET open = rep_load.open + EXCLUDED.open
    )
"""
_READ_DELTAS = """
    agg AS (SELECT rep_id, sum(delta)::integer AS d FROM rep_load_delta GROUP BY rep_id)
"""
_STATE = """
    WITH {deltas}
    SELECT 'o', rep_id, NULL::date, coalesce(r.open, 0) + coalesce(a.d, 0), NULL::jsonb
    FROM rep_load r FULL JOIN agg a USING (rep_id)
    UNION ALL
    SELECT 'd', rep_id, day, assigned, NULL FROM rep_daily WHERE day BETWEEN :a AND :b
    UNION ALL
    SELECT 'p', pool, NULL, NULL, credits FROM rr_pointers
"""
_LOAD_FOR_DECISION = DriverSql(_STATE.format(deltas=_FOLD_DELTAS))
_LOAD_READ_ONLY = DriverSql(_STATE.format(deltas=_READ_DELTAS))


async def decision_lock(conn: AsyncConnection) -> int:
    """Take the routing decision lock (re-entrant within the transaction); returns the
    configuration revision, read by the same statement (one round trip, not two)."""
    (row,) = await _DECISION_LOCK.fetch(conn, {})
    return int(row[1] or 0)


async def load_state(conn: AsyncConnection, now: datetime, *, fold: bool) -> LiveState:
    """Open counts, daily counts (days around ``now`` cover every time zone) and RR credits
    in one round trip. ``fold`` (only under the decision lock) compacts the load deltas."""
    statement = _LOAD_FOR_DECISION if fold else _LOAD_READ_ONLY
    rows = await statement.fetch(
        conn, {"a": now.date() - timedelta(days=1), "b": now.date() + timedelta(days=1)}
    )
    state = LiveState()
    for kind, key, day, n, credits in rows:
        if kind == "o":
            state.open_counts[key] = int(n)
        elif kind == "d":
            state.new_counts[(key, day)] = int(n)
        else:
            state.pointers[key] = {k: int(v) for k, v in (credits or {}).items()}
    return state


async def count_new(conn: AsyncConnection, rep_id: str, day: date) -> None:
    await conn.execute(
        text(
            "INSERT INTO rep_daily (rep_id, day, assigned) VALUES (:r, :d, 1) "
            "ON CONFLICT (rep_id, day) DO UPDATE SET assigned = rep_daily.assigned + 1"
        ),
        {"r": rep_id, "d": day},
    )


@dataclass(frozen=True)
class AssignmentRow:
    """One decision's arbiter row: (lead, cycle) and its explanation."""

    lead_id: uuid.UUID
    cycle: int
    decided_at: datetime
    event_id: uuid.UUID
    explanation: Mapping[str, Any]


_WRITE_DECISIONS = DriverSql(
    """
    WITH ins AS (
        INSERT INTO assignments (lead_id, cycle, decided_at, event_id, explanation)
        SELECT * FROM unnest(CAST(:a_ids AS uuid[]), CAST(:a_cycles AS integer[]),
                             CAST(:a_at AS timestamptz[]), CAST(:a_events AS uuid[]),
                             CAST(:a_expl AS jsonb[]))
        ON CONFLICT (lead_id, cycle) DO NOTHING RETURNING 1
    ),
    upd AS (
        UPDATE leads l SET stage = v.stage, held_from = v.held_from, cycle = v.cycle,
            buying_cycle = v.buying_cycle, snapshot = v.snapshot, assignee_kind = v.kind, rep_id = v.rep_id,
            team_id = v.team_id, queue_id = v.queue_id,
            excluded_reps = ARRAY(SELECT jsonb_array_elements_text(v.excluded)),
            assigned_at = v.assigned_at, updated_at = now()
        FROM unnest(CAST(:l_ids AS uuid[]), CAST(:l_stages AS text[]),
                    CAST(:l_held AS text[]), CAST(:l_cycles AS integer[]),
                    CAST(:l_snapshots AS jsonb[]), CAST(:l_kinds AS text[]),
                    CAST(:l_reps AS text[]), CAST(:l_teams AS text[]),
                    CAST(:l_queues AS text[]), CAST(:l_excluded AS jsonb[]),
                    CAST(:l_at AS timestamptz[]), CAST(:l_buying AS text[]))
             AS v(lead_id, stage, held_from, cycle, snapshot, kind, rep_id, team_id,
                  queue_id, excluded, assigned_at, buying_cycle)
        WHERE l.lead_id = v.lead_id
        RETURNING 1
    ),
    daily AS (
        INSERT INTO rep_daily (rep_id, day, assigned)
        SELECT * FROM unnest(CAST(:d_reps AS text[]), CAST(:d_days AS date[]),
                             CAST(:d_counts AS integer[])) ORDER BY 1, 2
        ON CONFLICT (rep_id, day) DO UPDATE SET assigned = rep_daily.assigned + EXCLUDED.assigned
    ),
    ptr AS (
        INSERT INTO rr_pointers (pool, credits)
        SELECT * FROM unnest(CAST(:p_pools AS text[]), CAST(:p_credits AS jsonb[])) ORDER BY 1
        ON CONFLICT (pool) DO UPDATE SET credits = EXCLUDED.credits, updated_at = now()
    )
    SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM upd)
    """
)


async def write_decisions(
    conn: AsyncConnection,
    assignments: Sequence[AssignmentRow],
    leads: Sequence[LeadRow],
    state: LiveState | None,
) -> None:
    """Everything a group of decisions changed, in one statement: the arbiter rows, each
    lead's owner and stage, the daily counts and the pool credits (no ``state``: only
    stages moved). The caller holds the lead rows and the decision lock, so every arbiter
    row must go in; one that does not means the state was not what the decisions were made
    on, and the transaction must not commit."""
    daily: list[tuple[tuple[str, date], int]] = []
    pools: list[str] = []
    credits: list[str] = []
    if state is not None:
        daily = sorted(state.new_delta.items())
        pools = sorted(state.dirty_pools)
        credits = [json_text(dict(state.pointers[p])) for p in pools]
    (row,) = await _WRITE_DECISIONS.fetch(
        conn,
        {
            "a_ids": [a.lead_id for a in assignments],
            "a_cycles": [a.cycle for a in assignments],
            "a_at": [a.decided_at for a in assignments],
            "a_events": [a.event_id for a in assignments],
            "a_expl": [json_text(a.explanation) for a in assignments],
            "l_ids": [r.lead_id for r in leads],
            "l_stages": [r.stage.value if r.stage else None for r in leads],
            "l_held": [r.held_from.value if r.held_from else None for r in leads],
            "l_cycles": [r.cycle for r in leads],
            "l_snapshots": [r.snapshot.model_dump_json() for r in leads],
            "l_kinds": [r.assignee_kind for r in leads],
            "l_reps": [r.rep_id for r in leads],
            "l_teams": [r.team_id for r in leads],
            "l_queues": [r.queue_id for r in leads],
            "l_excluded": [json_text(r.excluded_reps) for r in leads],
            "l_at": [r.assigned_at for r in leads],
            "l_buying": [r.buying_cycle.value for r in leads],
            "d_reps": [k[0] for k, _ in daily],
            "d_days": [k[1] for k, _ in daily],
            "d_counts": [n for _, n in daily],
            "p_pools": pools,
            "p_credits": credits,
        },
    )
    if row[0] != len(assignments) or row[1] != len(leads):
        raise RuntimeError(
            f"routing decisions not recorded whole: {row[0]}/{len(assignments)} assignments, "
            f"{row[1]}/{len(leads)} leads"
        )
    if state is not None:
        state.new_delta.clear()
        state.dirty_pools.clear()


# -- leads -----------------------------------------------------------------------------


@dataclass(frozen=True)
class LeadRow:
    lead_id: uuid.UUID
    stage: Stage | None
    held_from: Stage | None
    cycle: int
    snapshot: LeadSnapshot
    assignee_kind: str | None
    rep_id: str | None
    team_id: str | None
    queue_id: str | None
    excluded_reps: list[str]
    assigned_at: datetime | None
    opportunity_id: str | None
    amount: Decimal | None
    currency: str | None
    # The buying cycle (the lifecycle's: new business or a customer's expansion); ``cycle``
    # above counts qualification cycles (one assignment each).
    buying_cycle: Cycle = Cycle.NEW_BUSINESS

    @property
    def lifecycle(self) -> LeadLifecycle:
        """Routing never sees intake's events: a lead it has not seen was an inquiry."""
        return LeadLifecycle(self.stage or Stage.INQUIRY, self.held_from, self.buying_cycle)

    @property
    def in_sales(self) -> bool:
        return self.stage is not None and self.stage.value in SALES_OPEN_STAGES


_LEAD_COLUMNS = (
    "lead_id, stage, held_from, cycle, snapshot, assignee_kind, rep_id, team_id, queue_id, "
    "excluded_reps, assigned_at, opportunity_id, amount, currency, buying_cycle"
)


def _lead_row(r: Any) -> LeadRow:
    return LeadRow(
        lead_id=r[0],
        stage=Stage(r[1]) if r[1] else None,
        held_from=Stage(r[2]) if r[2] else None,
        cycle=r[3],
        snapshot=LeadSnapshot.model_validate(r[4] or {}),
        assignee_kind=r[5],
        rep_id=r[6],
        team_id=r[7],
        queue_id=r[8],
        excluded_reps=list(r[9] or []),
        assigned_at=r[10],
        opportunity_id=r[11],
        amount=r[12],
        currency=r[13],
        buying_cycle=Cycle(r[14] or Cycle.NEW_BUSINESS),
    )


async def lock_lead(conn: AsyncConnection, lead_id: uuid.UUID) -> LeadRow | None:
    """The lead's row FOR UPDATE: handlers and API commands on one lead take turns."""
    row = (
        await conn.execute(
            text(f"SELECT {_LEAD_COLUMNS} FROM leads WHERE lead_id = :id FOR UPDATE"),
            {"id": lead_id},
        )
    ).first()
    return None if row is None else _lead_row(row)


# Insert-or-lock in id order (two lockers cannot deadlock each other), with the cycles each
# lead was already assigned in.
_LOCK_LEADS = DriverSql(
    "INSERT INTO leads (lead_id) SELECT id FROM unnest(CAST(:ids AS uuid[])) AS t(id) "
    "ORDER BY id ON CONFLICT (lead_id) DO UPDATE SET lead_id = EXCLUDED.lead_id "
    f"RETURNING {_LEAD_COLUMNS}, "
    "ARRAY(SELECT a.cycle FROM assignments a WHERE a.lead_id = leads.lead_id)"
)


async def lock_leads(
    conn: AsyncConnection, lead_ids: Iterable[uuid.UUID]
) -> tuple[dict[uuid.UUID, LeadRow], dict[uuid.UUID, set[int]]]:
    """Insert-or-lock many lead rows in one round trip (in id order, so two lockers cannot
    deadlock each other), with the cycles each lead was already assigned in."""
    rows = await _LOCK_LEADS.fetch(conn, {"ids": sorted(set(lead_ids))})
    leads: dict[uuid.UUID, LeadRow] = {}
    cycles: dict[uuid.UUID, set[int]] = {}
    for r in rows:
        lead = _lead_row(r)
        leads[lead.lead_id] = lead
        cycles[lead.lead_id] = set(r[15] or [])
    return leads, cycles


async def get_lead(conn: AsyncConnection, lead_id: uuid.UUID) -> LeadRow | None:
    row = (
        await conn.execute(
            text(f"SELECT {_LEAD_COLUMNS} FROM leads WHERE lead_id = :id"), {"id": lead_id}
        )
    ).first()
    return None if row is None else _lead_row(row)


_UPDATABLE = {
    "stage",
    "held_from",
    "cycle",
    "snapshot",
    "assignee_kind",
    "rep_id",
    "team_id",
    "queue_id",
    "excluded_reps",
    "assigned_at",
    "opportunity_id",
    "amount",
    "currency",
    "buying_cycle",
}


async def update_lead(conn: AsyncConnection, lead_id: uuid.UUID, **fields: Any) -> None:
    unknown = set(fields) - _UPDATABLE
    if unknown:
        raise ValueError(f"not lead columns: {unknown}")
    params: dict[str, Any] = {"id": lead_id}
    sets = []
    for name, value in fields.items():
        if name == "snapshot":
            sets.append("snapshot = CAST(:snapshot AS jsonb)")
            value = value.model_dump_json() if isinstance(value, BaseModel) else json_text(value)
        elif name in ("stage", "held_from") and value is not None:
            sets.append(f"{name} = :{name}")
            value = Stage(value).value
        elif name == "buying_cycle":
            sets.append(f"{name} = :{name}")
            value = Cycle(value).value
        else:
            sets.append(f"{name} = :{name}")
        params[name] = value
    sets.append("updated_at = now()")
    await conn.execute(text(f"UPDATE leads SET {', '.join(sets)} WHERE lead_id = :id"), params)


async def set_lifecycle(conn: AsyncConnection, lead_id: uuid.UUID, lc: LeadLifecycle) -> None:
    await update_lead(conn, lead_id, stage=lc.stage, held_from=lc.held_from, buying_cycle=lc.cycle)


async def assignment_history(conn: AsyncConnection, lead_id: uuid.UUID) -> list[dict[str, Any]]:
    """Every owner decision on the lead, oldest first: the assignment of each qualification
    cycle (``kind`` "assigned") and each reassignment within a cycle ("reassigned")."""
    rows = await conn.execute(
        text(
            "SELECT 'assigned', cycle, decided_at, event_id, explanation FROM assignments "
            "WHERE lead_id = :id "
            "UNION ALL "
            "SELECT 'reassigned', cycle, decided_at, event_id, explanation FROM reassignments "
            "WHERE lead_id = :id "
            "ORDER BY 3, 2, 1"
        ),
        {"id": lead_id},
    )
    return [
        {"kind": r[0], "cycle": r[1], "decided_at": r[2], "event_id": r[3], "explanation": r[4]}
        for r in rows
    ]


async def insert_reassignment(conn: AsyncConnection, row: AssignmentRow) -> None:
    await conn.execute(
        text(
            "INSERT INTO reassignments (event_id, lead_id, cycle, decided_at, explanation) "
            "VALUES (:e, :l, :c, :at, CAST(:x AS jsonb)) ON CONFLICT (event_id) DO NOTHING"
        ),
        {
            "e": row.event_id,
            "l": row.lead_id,
            "c": row.cycle,
            "at": row.decided_at,
            "x": json_text(row.explanation),
        },
    )


async def lead_contact(conn: AsyncConnection, lead_id: uuid.UUID) -> dict[str, Any] | None:
    value = await conn.scalar(
        text("SELECT contact FROM leads WHERE lead_id = :id"), {"id": lead_id}
    )
    return dict(value) if value else None


# -- contact cards (learnt from leadflow.intake) -----------------------------------------


@dataclass
class ContactWrites:
    """A batch's contact cards, the last one per lead winning (delivery order), and its
    erasures; ``write_contacts`` applies them with one statement."""

    cards: dict[uuid.UUID, dict[str, Any]] = field(default_factory=dict)
    erased: dict[uuid.UUID, datetime] = field(default_factory=dict)

    def card(self, lead_id: uuid.UUID, card: dict[str, Any]) -> None:
        if lead_id not in self.erased:
            self.cards[lead_id] = card

    def erase(self, lead_id: uuid.UUID, at: datetime) -> None:
        self.cards.pop(lead_id, None)
        self.erased[lead_id] = at


_WRITE_CONTACTS = DriverSql(
    """
    INSERT INTO leads (lead_id, contact, contact_erased_at)
    SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:cards AS jsonb[]),
                         CAST(:erased AS timestamptz[]))
    ORDER BY 1
    ON CONFLICT (lead_id) DO UPDATE SET
        contact = CASE
            WHEN EXCLUDED.contact_erased_at IS NOT NULL OR leads.contact_erased_at IS NOT NULL
            THEN NULL ELSE EXCLUDED.contact END,
        contact_erased_at = COALESCE(leads.contact_erased_at, EXCLUDED.contact_erased_at),
        updated_at = now()
    """
)


async def write_contacts(conn: AsyncConnection, writes: ContactWrites) -> None:
    """Upsert the batch's cards and erasures (a lead routing has not seen yet gets its row
    now); an erased lead's card is never written back by a later profile event."""
    ids = sorted({*writes.cards, *writes.erased})
    if not ids:
        return
    await _WRITE_CONTACTS.execute(
        conn,
        {
            "ids": ids,
            "cards": [json_text(writes.cards[i]) if i in writes.cards else None for i in ids],
            "erased": [writes.erased.get(i) for i in ids],
        },
    )


async def rep_queue(conn: AsyncConnection, rep_id: str) -> list[dict[str, Any]]:
    """The rep's open leads, soonest SLA due first (leads without an open SLA last). Only the
    rep's own clocks count: marketing's (an MQL assigned within 30 minutes) has no rep."""
    rows = await conn.execute(
        text(
            """
            SELECT l.lead_id, l.stage, l.assigned_at, l.snapshot, s.sla_id, s.policy_id,
                   s.due_at, s.warn_at, l.contact
            FROM leads l
            LEFT JOIN LATERAL (
                SELECT sla_id, policy_id, due_at, warn_at FROM sla_clocks c
                WHERE c.lead_id = l.lead_id AND c.status = 'open' AND c.rep_id = :rep
                ORDER BY due_at LIMIT 1
            ) s ON true
            WHERE l.rep_id = :rep AND l.stage = ANY(CAST(:stages AS text[]))
            ORDER BY s.due_at NULLS LAST, l.assigned_at
            """
        ),
        {"rep": rep_id, "stages": list(SALES_OPEN_STAGES)},
    )
    return [
        {
            "lead_id": r[0],
            "stage": r[1],
            "assigned_at": r[2],
            "lead": r[3],
            "contact": r[8],
            "sla": None
            if r[4] is None
            else {"sla_id": r[4], "policy_id": r[5], "due_at": r[6], "warn_at": r[7]},
        }
        for r in rows
    ]


# -- SLA clocks (learnt from leadflow.sla) -----------------------------------------------


@dataclass
class SlaClockWrites:
    """The SLA clock changes of one consumer batch, in delivery order, written at its flush.

    A status seen before the batch started that clock again only applies to a clock that
    already existed (as the per-event writes did); one seen after its start applies to it."""

    starts: dict[str, dict[str, Any]] = field(default_factory=dict)
    early_status: dict[str, str] = field(default_factory=dict)
    late_status: dict[str, str] = field(default_factory=dict)

    def start(
        self,
        *,
        sla_id: str,
        lead_id: uuid.UUID,
        policy_id: str,
        rep_id: str | None,
        due_at: datetime,
        warn_at: datetime | None,
    ) -> None:
        self.starts[sla_id] = {
            "lead_id": lead_id,
            "policy_id": policy_id,
            "rep_id": rep_id,
            "due_at": due_at,
            "warn_at": warn_at,
        }

    def status(self, sla_id: str, status: str) -> None:
        if sla_id in self.starts:
            self.late_status[sla_id] = status
        else:
            self.early_status[sla_id] = status


_SLA_STATUS = DriverSql(
    "UPDATE sla_clocks c SET status = s.status "
    "FROM unnest(CAST(:ids AS text[]), CAST(:statuses AS text[])) AS s(sla_id, status) "
    "WHERE c.sla_id = s.sla_id"
)
_SLA_START = DriverSql(
    """
    INSERT INTO sla_clocks (sla_id, lead_id, policy_id, rep_id, due_at, warn_at)
    SELECT * FROM unnest(CAST(:ids AS text[]), CAST(:leads AS uuid[]),
                         CAST(:policies AS text[]), CAST(:reps AS text[]),
                         CAST(:due AS timestamptz[]), CAST(:warn AS timestamptz[]))
    ON CONFLICT (sla_id) DO UPDATE SET
        due_at = EXCLUDED.due_at, warn_at = EXCLUDED.warn_at, rep_id = EXCLUDED.rep_id
    """
)


async def write_sla_clocks(conn: AsyncConnection, writes: SlaClockWrites) -> None:
    """A batch's clock changes in at most three statements, whatever its size."""
    if writes.early_status:
        await _set_sla_status(conn, writes.early_status)
    if writes.starts:
        rows = writes.starts
        await _SLA_START.execute(
            conn,
            {
                "ids": list(rows),
                "leads": [r["lead_id"] for r in rows.values()],
                "policies": [r["policy_id"] for r in rows.values()],
                "reps": [r["rep_id"] for r in rows.values()],
                "due": [r["due_at"] for r in rows.values()],
                "warn": [r["warn_at"] for r in rows.values()],
            },
        )
    if writes.late_status:
        await _set_sla_status(conn, writes.late_status)


async def _set_sla_status(conn: AsyncConnection, statuses: dict[str, str]) -> None:
    await _SLA_STATUS.execute(conn, {"ids": list(statuses), "statuses": list(statuses.values())})


# -- rep tokens ----------------------------------------------------------------------------


async def insert_rep_token(
    conn: AsyncConnection, token_id: str, digest: bytes, rep_id: str, name: str
) -> dict[str, Any]:
    row = (
        await conn.execute(
            text(
                "INSERT INTO rep_tokens (token_id, token_sha256, rep_id, name) "
                "VALUES (:i, :d, :r, :n) RETURNING token_id, rep_id, name, created_at, revoked_at"
            ),
            {"i": token_id, "d": digest, "r": rep_id, "n": name},
        )
    ).one()
    return dict(row._mapping)


async def rep_tokens(conn: AsyncConnection, rep_id: str) -> list[dict[str, Any]]:
    rows = await conn.execute(
        text(
            "SELECT token_id, rep_id, name, created_at, revoked_at FROM rep_tokens "
            "WHERE rep_id = :r ORDER BY created_at, token_id"
        ),
        {"r": rep_id},
    )
    return [dict(r._mapping) for r in rows]


async def revoke_rep_token(conn: AsyncConnection, rep_id: str, token_id: str) -> bool:
    """Revoke (idempotently); False when the rep has no such token."""
    result = await conn.execute(
        text(
            "UPDATE rep_tokens SET revoked_at = coalesce(revoked_at, now()) "
            "WHERE rep_id = :r AND token_id = :i"
        ),
        {"r": rep_id, "i": token_id},
    )
    return bool(result.rowcount)


async def revoke_rep_tokens(conn: AsyncConnection, rep_id: str) -> int:
    """Revoke every live token of a rep; returns how many."""
    result = await conn.execute(
        text("UPDATE rep_tokens SET revoked_at = now() WHERE rep_id = :r AND revoked_at IS NULL"),
        {"r": rep_id},
    )
    return int(result.rowcount or 0)


async def rep_of_token(conn: AsyncConnection, digest: bytes) -> str | None:
    """The rep a live token belongs to, or None (unknown or revoked)."""
    rep = await conn.scalar(
        text("SELECT rep_id FROM rep_tokens WHERE token_sha256 = :d AND revoked_at IS NULL"),
        {"d": digest},
    )
    return str(rep) if rep is not None else None


# -- external ids and CRM receipts (crm.py) -------------------------------------------------


async def add_external_id(
    conn: AsyncConnection, lead_id: uuid.UUID, system: str | None, external_id: str
) -> None:
    """The lead's id in its source system; the first lead to claim an id keeps it (intake
    folds a re-import of the same id into the same lead anyway)."""
    await conn.execute(
        text(
            "INSERT INTO lead_external_ids (system, external_id, lead_id) VALUES (:s, :x, :l) "
            "ON CONFLICT (system, external_id) DO NOTHING"
        ),
        {"s": (system or "").lower(), "x": external_id, "l": lead_id},
    )


async def forget_external_ids(conn: AsyncConnection, lead_id: uuid.UUID) -> None:
    await conn.execute(text("DELETE FROM lead_external_ids WHERE lead_id = :l"), {"l": lead_id})


async def lead_by_external_id(
    conn: AsyncConnection, external_id: str, system: str | None
) -> uuid.UUID | None:
    """The lead with this id in ``system``, or in any system when none is named (the most
    recent when two systems share the id)."""
    row = (
        await conn.execute(
            text(
                """
                SELECT lead_id FROM lead_external_ids
                WHERE external_id = :x AND (CAST(:s AS text) IS NULL OR system = :s)
                ORDER BY recorded_at DESC LIMIT 1
                """
            ),
            {"x": external_id, "s": system.lower() if system else None},
        )
    ).first()
    return uuid.UUID(str(row.lead_id)) if row else None


async def external_ids(conn: AsyncConnection, lead_id: uuid.UUID) -> list[dict[str, str]]:
    rows = await conn.execute(
        text(
            "SELECT system, external_id FROM lead_external_ids WHERE lead_id = :l "
            "ORDER BY system, external_id"
        ),
        {"l": lead_id},
    )
    return [{"system": r.system, "external_id": r.external_id} for r in rows]


async def crm_receipt(conn: AsyncConnection, key: str) -> dict[str, Any] | None:
    row = (
        await conn.execute(
            text("SELECT response FROM crm_receipts WHERE event_key = :k"), {"k": key}
        )
    ).first()
    return dict(row.response) if row else None


async def record_crm_receipt(
    conn: AsyncConnection, key: str, lead_id: uuid.UUID, response: dict[str, Any]
) -> None:
    await conn.execute(
        text(
            "INSERT INTO crm_receipts (event_key, lead_id, response) "
            "VALUES (:k, :l, CAST(:r AS jsonb)) ON CONFLICT (event_key) DO NOTHING"
        ),
        {"k": key, "l": lead_id, "r": json_text(response)},
    )
