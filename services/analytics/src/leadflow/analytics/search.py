"""Lead search for the console's ``/leads?q=``: by e-mail, name or company, with filters
(stage, grade, source channel, owner) and paging.

Analytics is where every service's events meet, so the search lives here: ``lead_current``
has each lead's stage, channel and owner; the latest contact card is the last personal
``contact`` field recorded (``lead_personal``, blanked on erasure, so an erased person is
never found by name); the grade is the last ``lead.scored`` / ``lead.qualified`` one.
The results are personal data: ``leads.read`` (admin, marketing ops, sales managers).

It is also every report figure's drill-down: ``reached``/``from``/``to``/``won_in``/
``pipeline_in`` select the leads a cohort figure counts and ``stuck`` the stuck leads, with
the predicates of ``cohort`` (the same ones the figures are defined by).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query

from leadflow.analytics import cohort, process_reports
from leadflow.analytics.store import Filters
from leadflow.events import KitDep
from leadflow.events.access import Permission, requires
from leadflow.events.errors import Problem

search_router = APIRouter()

_PEOPLE = """
WITH people AS (
    SELECT DISTINCT ON (l.lead_id) l.lead_id, p.fields->'contact' AS contact
    FROM lead_event_log l
    JOIN lead_personal p ON p.lead_id = l.lead_id AND p.event_id = l.event_id
    WHERE p.fields ? 'contact'
    ORDER BY l.lead_id, l.global_position DESC
), grades AS (
    SELECT DISTINCT ON (lead_id) lead_id, payload->>'grade' AS grade,
           payload->>'matrix_cell' AS matrix_cell
    FROM lead_event_log WHERE event_type IN ('lead.scored', 'lead.qualified')
    ORDER BY lead_id, global_position DESC
), accounts AS (
    SELECT DISTINCT ON (lead_id) lead_id,
           coalesce(payload->'account'->>'domain', payload->'account'->>'account_id') AS account
    FROM lead_event_log
    WHERE event_type IN ('lead.captured', 'lead.profile_updated') AND payload ? 'account'
    ORDER BY lead_id, global_position DESC
)"""
_TEXT = """(CAST(:pattern AS text) IS NULL
       OR pe.contact->>'email' ILIKE :pattern
       OR concat_ws(' ', pe.contact->>'first_name', pe.contact->>'last_name') ILIKE :pattern
       OR pe.contact->>'company' ILIKE :pattern)"""


def _where(
    pattern: str | None,
    fields: dict[str, str | None],
    drill: cohort.CohortQuery,
    extra: tuple[str, dict[str, Any]] | None,
) -> tuple[str, str, dict[str, Any]]:
    """(joins, condition, parameters) of a search: text, field filters, the cohort a figure
    counts (``cohort.cohort_condition``) and another figure's condition (``extra``: stuck
    leads, reps or SLA events)."""
    conds = [_TEXT]
    params: dict[str, Any] = {"pattern": pattern}
    for column, value in fields.items():
        if value:
            conds.append(f"{column} = :{column.replace('.', '_')}")
            params[column.replace(".", "_")] = value
    joins = ""
    if drill.active:
        joins = cohort.FOLD_JOIN.format(lead="c.lead_id")
        cond, cparams = cohort.cohort_condition(drill)
        conds.append(cond)
        params.update(cparams)
    if extra is not None:
        conds.append(f"({extra[0]})")
        params.update(extra[1])
    return joins, " AND ".join(conds), params


def _like(q: str | None) -> str | None:
    """A contains-pattern with LIKE's own wildcards escaped (a ``%`` typed is a ``%``)."""
    if not q or not q.strip():
        return None
    escaped = q.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


_MILESTONE = "^(" + "|".join(cohort.REACHABLE) + ")$"
_CURRENCY = "^[A-Z]{3}$"
_HANDOFF = "^(" + "|".join(cohort.HANDOFF_KINDS) + ")$"
_SLA = "^(" + "|".join(cohort.SLA_KINDS) + ")$"


@search_router.get(
    "/v1/leads/search",
    tags=["leads"],
    summary="Find leads by e-mail, name or company, filtered by stage, grade, channel, owner; "
    "or list the leads behind a report's figure (reached, from/to, won_in, pipeline_in, stuck)",
    dependencies=[requires(Permission.LEADS_READ)],
)
async def search_leads(
    kit: KitDep,
    q: Annotated[str | None, Query(max_length=200)] = None,
    stage: Annotated[str | None, Query(max_length=32)] = None,
    grade: Annotated[str | None, Query(max_length=8)] = None,
    channel: Annotated[str | None, Query(max_length=200)] = None,
    campaign: Annotated[str | None, Query(max_length=200)] = None,
    rep_id: Annotated[str | None, Query(max_length=64)] = None,
    reached: Annotated[
        str | None,
        Query(
            pattern=_MILESTONE,
            description="a milestone or outcome the lead's inquiry cohort counts it at "
            "(the funnel's bar; docs/metrics.md)",
        ),
    ] = None,
    from_: Annotated[
        date | None,
        Query(alias="from", description="first day of the inquiry cohort (inclusive, UTC)"),
    ] = None,
    to: Annotated[
        date | None, Query(description="last day of the inquiry cohort (inclusive, UTC)")
    ] = None,
    won_in: Annotated[
        str | None, Query(pattern=_CURRENCY, description="won a deal in this currency")
    ] = None,
    pipeline_in: Annotated[
        str | None,
        Query(pattern=_CURRENCY, description="has an open opportunity in this currency"),
    ] = None,
    stuck: Annotated[
        bool,
        Query(description="open and past its stage's expected time (the stuck-leads figure)"),
    ] = False,
    handoff: Annotated[
        str | None,
        Query(
            pattern=_HANDOFF,
            description="a reps-report count (hand-off events in from/to, by event day)",
        ),
    ] = None,
    sla: Annotated[
        str | None,
        Query(
            pattern=_SLA,
            description="an SLA count (clocks by the day they started, in from/to)",
        ),
    ] = None,
    by_rep: Annotated[str | None, Query(max_length=64, description="the figure's rep")] = None,
    by_team: Annotated[str | None, Query(max_length=64, description="the figure's team")] = None,
    by_queue: Annotated[str | None, Query(max_length=64, description="the figure's queue")] = None,
    policy: Annotated[
        str | None, Query(max_length=64, description="the figure's SLA policy")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 25,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> dict[str, Any]:
    """With ``stuck`` the dates and segments are the stuck report's (``/v1/stuck``: the
    inquiry day), with ``handoff``/``sla`` the reps report's (the event's day, the clock's
    start day: ``facts`` = the events counted); otherwise ``from``/``to`` select the inquiry
    cohort, as the funnel does. ``money`` sums the listed leads' money per currency."""
    if from_ and to and to < from_:
        raise Problem(
            422,
            "Invalid date range",
            "'to' is before 'from'",
            errors=[{"field": "to", "message": "must not be before 'from'"}],
        )
    modes = [n for n, on in (("stuck", stuck), ("handoff", handoff), ("sla", sla)) if on]
    if len(modes) > 1:
        raise Problem(
            422,
            "One figure at a time",
            f"{' and '.join(modes)} are different figures",
            errors=[{"field": modes[1], "message": f"not with {modes[0]}"}],
        )
    segment = Filters(from_, to, channel or None, campaign or None)
    async with kit.snapshot() as tx:
        extra: tuple[str, dict[str, Any]] | None = None
        facts: str | None = None
        drill = cohort.CohortQuery(from_, to, reached, won_in, pipeline_in)
        if modes:
            drill = cohort.CohortQuery(None, None, reached, won_in, pipeline_in)
        if stuck:
            days = await process_reports.expected_days(tx)
            if stage is not None and stage not in days:
                raise Problem(
                    422,
                    "Unknown stage",
                    f"{stage!r} has no expected duration in the process definition",
                    errors=[{"field": "stage", "message": f"one of {', '.join(days)}"}],
                )
            where, wparams = segment.where("inquiry_at::date")
            extra = cohort.stuck_condition(where, wparams, kit.clock.now(), days, stage)
            if extra is None:
                return {"items": [], "total": 0, "limit": limit, "offset": offset, "money": []}
        elif handoff or sla:
            table = "rep_fact" if handoff else "sla_fact"
            fq = cohort.FactQuery(table, str(handoff or sla), by_rep, by_team, by_queue, policy)
            where, wparams = segment.where("day")
            fcond, fparams = cohort.fact_condition(where, wparams, fq)
            extra = (f"EXISTS (SELECT FROM {table} WHERE lead_id = c.lead_id AND {fcond})", fparams)
            facts = f"SELECT count(*) FROM {table} WHERE {fcond} AND lead_id IN (SELECT c.lead_id "
        joins, cond, params = _where(
            _like(q),
            {
                "c.stage": stage,
                "g.grade": grade,
                "c.channel": channel,
                "c.campaign": campaign,
                "c.rep_id": rep_id,
            },
            drill,
            extra,
        )
        base = f"FROM lead_current c {joins} LEFT JOIN people pe ON pe.lead_id = c.lead_id "
        base += f"LEFT JOIN grades g ON g.lead_id = c.lead_id WHERE {cond}"
        rows = await tx.fetch(
            f"{_PEOPLE} SELECT c.lead_id, c.stage, c.channel, c.campaign, c.rep_id, "
            "c.stage_entered_at, pe.contact, g.grade, g.matrix_cell, "
            "(SELECT ac.account FROM accounts ac WHERE ac.lead_id = c.lead_id) AS account, "
            f"count(*) OVER () AS total {base} "
            "ORDER BY c.stage_entered_at DESC, c.lead_id LIMIT :limit OFFSET :offset",
            **params,
            limit=limit,
            offset=offset,
        )
        money = []
        if drill.active:
            for currency, pipeline, won, deals in await tx.fetch(
                f"{_PEOPLE}, picked AS (SELECT fs.s->'money' AS money {base}) " + cohort.MONEY_SUMS,
                **params,
            ):
                money.append(
                    {
                        "currency": currency,
                        "pipeline": round(float(pipeline or 0), 2),
                        "won_revenue": round(float(won or 0), 2),
                        "won_deals": int(deals or 0),
                    }
                )
        n_facts = 0
        if facts is not None:
            n_facts = int(await tx.fetchval(f"{_PEOPLE} {facts}{base})", **params) or 0)
    items = [
        {
            "lead_id": str(r.lead_id),
            "stage": r.stage,
            "channel": r.channel,
            "campaign": r.campaign,
            "rep_id": r.rep_id or None,
            "stage_entered_at": r.stage_entered_at.isoformat(),
            "contact": r.contact or {},
            "grade": r.grade,
            "matrix_cell": r.matrix_cell,
            # the console's /accounts/{key}: the company domain, else the account id
            "account_key": r.account,
        }
        for r in rows
    ]
    total = int(rows[0].total) if rows else 0
    answer = {"items": items, "total": total, "limit": limit, "offset": offset, "money": money}
    if facts is not None:
        answer["facts"] = n_facts
    return answer
