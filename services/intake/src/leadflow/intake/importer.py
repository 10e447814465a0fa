"""Imports: plan a file (format, header, mapping), preview it without writing, and run it in
batches, each batch one transaction with its progress.

A row becomes a lead identified by e-mail, phone or the source system's id (``external_id``,
e.g. X Education's ``Prospect ID``); a lead already known by that id is left as it is, so
re-importing an export is idempotent. When the mapping names an ``outcome`` column the file is
history: its leads and their outcomes are recorded as ``historical`` events (see
``leadflow.intake.imports``). A bad row is a rejection with its number and reason, never the
end of the import.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import os
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from leadflow.events import ServiceKit, UnitOfWork
from leadflow.events.catalogue.intake import HistoricalDealLost, HistoricalDealWon
from leadflow.events.envelope import new_id
from leadflow.events.errors import Problem
from leadflow.intake import commands, domain, imports, store, tabular
from leadflow.intake.commands import IngestItem
from leadflow.intake.domain import CleanInquiry, HygieneError
from leadflow.intake.imports import History
from leadflow.intake.store import ImportCounts

log = logging.getLogger("leadflow.intake.imports")

IDENTITY_TARGETS = frozenset({"contact.email", "contact.phone", "external_id"})
PREVIEW_ROWS = 20
PREVIEW_SCAN_ROWS = 10_000
Transact = Callable[[Callable[[UnitOfWork], Awaitable[None]]], Awaitable[None]]


@dataclass(frozen=True)
class ImportPlan:
    """How a spooled file will be read and mapped (decided before any row is written)."""

    fmt: tabular.FileFormat
    header: list[str]
    columns: dict[str, str]
    suggested: dict[str, str]
    system: str
    preset: str | None

    @property
    def history(self) -> bool:
        return imports.is_history_import(self.columns)


def _problem(status: int, title: str, detail: str, field: str, message: str) -> Problem:
    return Problem(status, title, detail, errors=[{"field": field, "message": message}])


def chosen_mapping(preset: str | None, mapping: Mapping[str, str]) -> dict[str, str]:
    chosen: dict[str, str] = {}
    if preset:
        if preset not in domain.PRESET_MAPPINGS:
            raise _problem(422, "Unknown preset", f"no mapping preset {preset!r}", "preset",
                           f"use one of {sorted(domain.PRESET_MAPPINGS)}")  # fmt: skip
        chosen.update(domain.PRESET_MAPPINGS[preset])
    chosen.update(mapping)
    errors = domain.mapping_errors(chosen)
    if errors:
        raise Problem(422, "Invalid mapping", "unknown target fields",
                      errors=[e.as_dict() for e in errors])  # fmt: skip
    return chosen


def plan_file(
    path: str,
    filename: str | None,
    *,
    preset: str | None,
    mapping: Mapping[str, str],
    keep_unmapped: bool,
    system: str | None,
    require_mapping: bool = True,
) -> ImportPlan:
    """Detect the format, read the header and resolve the mapping (blocking: run in a thread).

    Without a preset or mapping the import is refused (``require_mapping``) while a preview
    proposes the mapping suggested from the header names."""
    chosen = chosen_mapping(preset, mapping)
    fmt = tabular.detect(path, filename)
    try:
        header, rows = tabular.read_rows(path, fmt)
    except tabular.UnreadableFile as exc:
        raise _problem(422, "Unreadable file", str(exc), "file", str(exc)) from None
    rows.close()
    suggested = imports.suggest_mapping(header)
    if not chosen:
        if require_mapping:
            raise _problem(422, "No mapping", "give a column mapping or a preset "
                           "(POST /v1/imports/preview proposes one from the header)",
                           "mapping", "missing")  # fmt: skip
        chosen = suggested
    columns = domain.resolve_mapping(header, chosen, keep_unmapped=keep_unmapped)
    if require_mapping and not IDENTITY_TARGETS & set(columns.values()):
        raise _problem(
            422, "No identity column",
            f"no column of this file ({len(header)} columns, "
            f"{fmt.delimiter!r}-separated, {fmt.encoding or fmt.kind}) is mapped to "
            "contact.email, contact.phone or external_id",
            "mapping", "map a column to contact.email, contact.phone or external_id",
        )  # fmt: skip
    return ImportPlan(fmt, header, columns, suggested, system or preset or "import", preset)


# ---------------------------------------------------------------------------------------
# One row


@dataclass(frozen=True)
class Prepared:
    number: int
    inquiry: CleanInquiry
    history: History | None


Rejection = tuple[int, str | None, str]


def prepare_row(
    row: tabular.Row, columns: Mapping[str, str], region: str | None
) -> Prepared | Rejection:
    """A parsed row as a clean inquiry (+ its history), or why it is rejected."""
    if row.values is None:
        return (row.number, None, row.error or "unreadable row")
    try:
        created = imports.created_at_of(row.values, columns)
        inquiry = domain.clean_inquiry(
            domain.map_row(row.values, columns, occurred_at=created),
            channel="import",
            require_email=False,
            default_region=region,
        )
        history = imports.history_of(row.values, columns)
    except HygieneError as exc:
        return (
            row.number,
            exc.errors[0].field,
            "; ".join(f"{e.field}: {e.message}" for e in exc.errors),
        )
    contact = inquiry.clean.contact
    missing = imports.identity_problem(contact.email, contact.phone, inquiry.external_id)
    if missing is not None:
        return (row.number, "contact.email", missing)
    return Prepared(row.number, inquiry, history)


def normalised(prepared: Prepared) -> dict[str, Any]:
    """A prepared row as the preview shows it."""
    inquiry = prepared.inquiry
    history = prepared.history
    return {
        "row": prepared.number,
        "contact": inquiry.clean.contact.model_dump(exclude_defaults=True),
        "source": inquiry.source.model_dump(exclude_none=True),
        "answers": inquiry.answers.model_dump(exclude_none=True),
        "consent": inquiry.consent.model_dump(mode="json") if inquiry.consent else None,
        "external_id": inquiry.external_id,
        "attributes": inquiry.attributes,
        "occurred_at": inquiry.occurred_at.isoformat() if inquiry.occurred_at else None,
        "history": None
        if history is None
        else {
            "outcome": "won" if history.won else "lost",
            "amount": str(history.amount) if history.amount is not None else None,
            "currency": history.currency,
            "closed_at": history.closed_at.isoformat() if history.closed_at else None,
        },
    }


def preview(plan: ImportPlan, path: str, region: str | None) -> dict[str, Any]:
    """What an import of this file would do, without writing anything (blocking)."""
    _, reader = tabular.read_rows(path, plan.fmt)
    first: list[dict[str, Any]] = []
    problems: list[dict[str, Any]] = []
    problem_count = checked = 0
    with reader:
        for row in itertools.islice(reader, PREVIEW_SCAN_ROWS):
            checked += 1
            result = prepare_row(row, plan.columns, region)
            if isinstance(result, Prepared):
                if len(first) < PREVIEW_ROWS:
                    first.append(normalised(result))
                continue
            problem_count += 1
            if len(problems) < 1000:
                problems.append({"row": result[0], "field": result[1], "reason": result[2]})
        more = next(reader, None) is not None
    identity = sorted(IDENTITY_TARGETS & set(plan.columns.values()))
    return {
        **plan.fmt.as_dict(),
        "header": plan.header,
        "suggested_mapping": plan.suggested,
        "columns": plan.columns,
        "preset": plan.preset,
        "source_system": plan.system,
        "identified_by": identity,
        "history": plan.history,
        "rows": first,
        "rows_checked": checked,
        "rows_not_checked": more,
        "problems": problems,
        "problem_count": problem_count,
        "writes": "nothing: POST /v1/imports with the same file and mapping imports it",
    }


# ---------------------------------------------------------------------------------------
# Running an import


async def run_import(
    kit: ServiceKit,
    transact: Transact,
    import_id: uuid.UUID,
    path: str,
    plan: ImportPlan,
    *,
    batch_rows: int,
    region: str | None,
) -> None:
    """Read the spooled file in batches; each batch is one transaction with its progress.
    The rows are counted first (a cheap pass without parsing a lead), so the progress is
    rows read of a known total."""
    try:
        total = await asyncio.to_thread(_count_rows, path, plan.fmt)
        async with kit.unit_of_work() as uow:
            await store.import_total(uow.tx, import_id, total)
        _, reader = await asyncio.to_thread(tabular.read_rows, path, plan.fmt)
        with reader:
            while batch := await asyncio.to_thread(_take, reader, batch_rows, plan.columns, region):
                await import_batch(transact, import_id, batch, plan)
        async with kit.unit_of_work() as uow:
            await store.finish_import(uow.tx, import_id, "completed")
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            async with kit.unit_of_work() as uow:
                await store.finish_import(
                    uow.tx, import_id, "interrupted", "the service stopped during the import"
                )
        raise
    except Exception as exc:
        log.exception("import %s failed", import_id)
        with contextlib.suppress(Exception):
            async with kit.unit_of_work() as uow:
                await store.finish_import(uow.tx, import_id, "failed", repr(exc)[:500])
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


def _count_rows(path: str, fmt: tabular.FileFormat) -> int:
    """The file's data rows (what ``rows_read`` reaches when the import is done)."""
    _, reader = tabular.read_rows(path, fmt)
    with reader:
        return sum(1 for _ in reader)


def _take(
    rows: tabular.RowReader, n: int, columns: Mapping[str, str], region: str | None
) -> list[Prepared | Rejection]:
    """The next ``n`` rows, parsed and cleaned off the event loop."""
    return [prepare_row(row, columns, region) for row in itertools.islice(rows, n)]


def _history_event(
    history: History, import_id: uuid.UUID
) -> HistoricalDealWon | HistoricalDealLost:
    if history.won:
        return HistoricalDealWon(
            import_id=str(import_id), amount=history.amount, currency=history.currency
        )
    return HistoricalDealLost(import_id=str(import_id))


async def import_batch(
    transact: Transact,
    import_id: uuid.UUID,
    batch: list[Prepared | Rejection],
    plan: ImportPlan,
) -> None:
    rejections = [r for r in batch if not isinstance(r, Prepared)]
    prepared = [r for r in batch if isinstance(r, Prepared)]

    async def work(uow: UnitOfWork) -> None:
        tx = uow.tx
        items = [
            IngestItem(
                dataclasses.replace(
                    p.inquiry,
                    source=p.inquiry.source.model_copy(update={"import_id": str(import_id)}),
                    external_system=plan.system,
                ),
                "import",
                new_id(),
                historical=plan.history,
            )
            for p in prepared
        ]
        ext_keys = {f"x:{plan.system}:{i.inquiry.external_id}" for i in items
                    if i.inquiry.external_id}  # fmt: skip
        await store.lock_identities(tx, commands.identity_keys(items) | ext_keys)
        known = await store.external_leads(
            tx, plan.system, [i.inquiry.external_id for i in items if i.inquiry.external_id]
        )
        fresh: list[tuple[IngestItem, Prepared]] = []
        seen: set[str] = set(known)
        unchanged = 0
        for item, row in zip(items, prepared, strict=True):
            ext = item.inquiry.external_id
            if ext is not None and ext in seen:
                unchanged += 1  # known by the source system's id: re-imports change nothing
                continue
            if ext is not None:
                seen.add(ext)
            fresh.append((item, row))
        results = await commands.ingest(uow, [i for i, _ in fresh], identities_locked=True)
        won = lost = 0
        external: list[tuple[str, uuid.UUID, str | None]] = []
        now = uow.clock.now()
        for (item, row), result in zip(fresh, results, strict=True):
            outcome: str | None = None
            if row.history is not None and result.new_lead and not result.matched:
                captured_at = item.inquiry.occurred_at or now
                closed = row.history.closed_at or captured_at
                await uow.append(
                    result.lead_id,
                    _history_event(row.history, import_id),
                    occurred_at=clamp(max(closed, captured_at), now),
                )
                outcome = "won" if row.history.won else "lost"
                won += row.history.won
                lost += not row.history.won
            if item.inquiry.external_id is not None:
                external.append((item.inquiry.external_id, result.lead_id, outcome))
        await store.record_external_ids(tx, plan.system, external)
        counts = ImportCounts(
            rows_read=len(batch),
            accepted=len(prepared),
            rejected=len(rejections),
            new_leads=sum(1 for r in results if r.new_lead and not r.matched),
            matched=sum(1 for r in results if r.matched) + unchanged,
            unchanged=unchanged,
            history_won=won,
            history_lost=lost,
        )
        await store.import_progress(tx, import_id, counts, rejections)

    await transact(work)


def clamp(at: datetime | None, now: datetime) -> datetime:
    """History never happens in the future."""
    return now if at is None or at > now else at
