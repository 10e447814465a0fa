"""The process as analytics sees it: the published definition (from the log), the process
map (``GET /v1/process/map``), the audit (``GET /v1/audit``, ``GET /v1/audit.html``).

sla-monitor publishes the process definition as ``sla.process_published``; analytics logs
it like every event, so the latest one in ``lead_event_log`` is the current definition
(none yet: the kernel's built-in, version 0). Which SLA policies hold which stage comes from
the newer of that event and the latest ``sla.policies_published`` (policies name their
stage), else the built-in policies' stages.

The map and the audit read the events of the leads active in the period from the log (one
statement) and compute with the pure ``history``, ``process_map`` and ``audit`` modules.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from leadflow.analytics import audit as audit_domain
from leadflow.analytics import process_map as map_domain
from leadflow.analytics.history import Event, Period, walk_all
from leadflow.events import KitDep
from leadflow.events.access import Permission, requires
from leadflow.events.envelope import stream_id
from leadflow.events.errors import Problem
from leadflow.events.process import BUILT_IN_SLA_STAGES, ProcessDefinition, built_in_process
from leadflow.events.sql import Tx

PROCESS_STREAM = stream_id("lead-process")
POLICY_STREAM = stream_id("sla-policies")
CONFIG_STREAMS = (
    PROCESS_STREAM,
    POLICY_STREAM,
    stream_id("routing-rules"),
    stream_id("scoring-model"),
)

_ENV = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
)


@dataclass(frozen=True)
class CurrentProcess:
    version: int
    definition: ProcessDefinition
    sla_policies: dict[str, list[str]]


def _built_in_coverage() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for policy_id, stage in BUILT_IN_SLA_STAGES.items():
        out.setdefault(stage, []).append(policy_id)
    return out


async def _latest(tx: Tx, stream: Any, event_type: str) -> Any:
    return await tx.fetchrow(
        "SELECT global_position, payload FROM lead_event_log "
        "WHERE lead_id = :s AND event_type = :t ORDER BY global_position DESC LIMIT 1",
        s=stream,
        t=event_type,
    )


async def current_process(tx: Tx) -> CurrentProcess:
    """The latest published definition and which SLA policies hold each stage."""
    proc = await _latest(tx, PROCESS_STREAM, "sla.process_published")
    policies = await _latest(tx, POLICY_STREAM, "sla.policies_published")
    if proc is None:
        version, definition, coverage = 0, built_in_process(), _built_in_coverage()
    else:
        version = int(proc.payload["process_version"])
        definition = ProcessDefinition.model_validate({"stages": proc.payload["stages"]})
        coverage = {k: list(v) for k, v in (proc.payload.get("sla_policies") or {}).items()}
    if policies is not None and (proc is None or policies.global_position > proc.global_position):
        coverage = {}
        for p in policies.payload.get("policies", []):
            if p.get("stage") and p.get("enabled", True):
                coverage.setdefault(p["stage"], []).append(p["policy_id"])
    return CurrentProcess(version, definition, coverage)


async def expected_days(tx: Tx) -> dict[str, float]:
    """Stuck-lead thresholds: each stage's expected duration in the current process."""
    return (await current_process(tx)).definition.expected_days()


def period_of(start: date | None, end: date | None) -> Period:
    """Inclusive days (UTC) as ``[start 00:00, day after end 00:00)``."""
    return Period(
        datetime.combine(start, time(), UTC) if start else None,
        datetime.combine(end + timedelta(days=1), time(), UTC) if end else None,
    )


async def period_events(tx: Tx, period: Period) -> list[Event]:
    """Every event (up to the period's end) of the leads with an event in the period."""
    conds = ["NOT (lead_id = ANY(:streams))"]
    params: dict[str, Any] = {"streams": list(CONFIG_STREAMS)}
    if period.start is not None:
        conds.append("occurred_at >= :start")
        params["start"] = period.start
    if period.end is not None:
        conds.append("occurred_at < :end")
        params["end"] = period.end
    until = "AND l.occurred_at < :end" if period.end is not None else ""
    rows = await tx.fetch(
        "WITH active AS (SELECT DISTINCT lead_id FROM lead_event_log "
        f"WHERE {' AND '.join(conds)}) "
        "SELECT l.lead_id, l.event_type, l.occurred_at, l.payload "
        f"FROM lead_event_log l JOIN active a USING (lead_id) WHERE TRUE {until} "
        "ORDER BY l.lead_id, l.occurred_at, l.global_position",
        **params,
    )
    return [Event(str(r[0]), r[1], r[2], r[3]) for r in rows]


async def published_counts(tx: Tx, period: Period) -> dict[str, int]:
    until = "AND occurred_at < :end" if period.end is not None else ""
    rows = await tx.fetch(
        "SELECT event_type, count(*) FROM lead_event_log "
        f"WHERE lead_id = ANY(:streams) {until} GROUP BY event_type",
        streams=list(CONFIG_STREAMS),
        **({"end": period.end} if period.end else {}),
    )
    return {t: int(n) for t, n in rows}


async def process_map(tx: Tx, period: Period, now: datetime) -> dict[str, Any]:
    proc = await current_process(tx)
    leads = walk_all(await period_events(tx, period))
    return map_domain.process_map(
        proc.definition, proc.version, proc.sla_policies, leads, period, now
    )


async def audit(tx: Tx, period: Period, now: datetime) -> dict[str, Any]:
    proc = await current_process(tx)
    leads = walk_all(await period_events(tx, period))
    published = await published_counts(tx, period)
    return audit_domain.audit(
        proc.definition, proc.version, proc.sla_policies, published, leads, period, now
    )


# -- HTTP -------------------------------------------------------------------------------------

router = APIRouter(tags=["process"])


async def period_dep(
    from_: Annotated[date | None, Query(alias="from")] = None,
    to: Annotated[date | None, Query()] = None,
) -> Period:
    if from_ and to and to < from_:
        raise Problem(
            422,
            "Invalid date range",
            "'to' is before 'from'",
            errors=[{"field": "to", "message": "must not be before 'from'"}],
        )
    return period_of(from_, to)


PeriodDep = Annotated[Period, Depends(period_dep)]


@router.get("/v1/process/map", summary="The process map: stages, allowed moves, live figures")
async def get_process_map(
    kit: KitDep, period: PeriodDep, _: Any = requires(Permission.REPORTS)
) -> dict[str, Any]:
    async with kit.snapshot() as tx:
        return await process_map(tx, period, kit.clock.now())


@router.get("/v1/audit", summary="The process audit computed from the event log")
async def get_audit(
    kit: KitDep, period: PeriodDep, _: Any = requires(Permission.REPORTS)
) -> dict[str, Any]:
    async with kit.snapshot() as tx:
        return await audit(tx, period, kit.clock.now())


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def render_audit(report: dict[str, Any], process: dict[str, Any]) -> str:
    """The audit as a printable page for the marketing-sales review (print to PDF)."""
    return _ENV.get_template("audit.html").render(
        a=report, map=process, duration=duration_text, pct=_pct
    )


@router.get(
    "/v1/audit.html",
    response_class=HTMLResponse,
    summary="The audit as a printable page (print to PDF for the review meeting)",
)
async def get_audit_html(
    kit: KitDep, period: PeriodDep, _: Any = requires(Permission.REPORTS)
) -> HTMLResponse:
    now = kit.clock.now()
    async with kit.snapshot() as tx:
        report = await audit(tx, period, now)
        mapped = await process_map(tx, period, now)
    return HTMLResponse(render_audit(report, mapped))
