"""CSV/.xlsx imports: the upload spooled to disk, its preview, the import run in the
background and its status with the rejected rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import uuid
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile

from leadflow.events import KitDep
from leadflow.events.envelope import new_id
from leadflow.events.errors import Problem
from leadflow.intake import importer, store
from leadflow.intake import responses as rs
from leadflow.intake.api.credentials import ImportsDep
from leadflow.intake.api.runtime import _region, in_transaction, runtime
from leadflow.intake.responses import ok

router = APIRouter()


# ---------------------------------------------------------------------------------------
# Imports


def _parse_mapping(raw: str | None) -> dict[str, str]:
    if not raw:
        return {}
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Problem(
            422,
            "Invalid mapping",
            "mapping must be a JSON object",
            errors=[{"field": "mapping", "message": str(exc)}],
        ) from None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise Problem(
            422,
            "Invalid mapping",
            "mapping must map column names to fields",
            errors=[{"field": "mapping", "message": "not an object of strings"}],
        )
    return value


_RAW_UPLOADS = frozenset(
    {
        "text/csv",
        "application/csv",
        "text/plain",
        "text/tab-separated-values",
        "application/vnd.ms-excel",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/octet-stream",
    }
)


async def _spool_body(request: Request) -> tuple[str, str | None, dict[str, str]]:
    """Stream the CSV to a temporary file (never whole in memory); returns its path,
    filename and the form fields sent with it."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    fd, path = tempfile.mkstemp(prefix="leadflow-import-", suffix=".csv")
    fields: dict[str, str] = {}
    filename: str | None = None
    try:
        with os.fdopen(fd, "wb") as out:
            if content_type in _RAW_UPLOADS:
                async for chunk in request.stream():
                    out.write(chunk)
            elif content_type == "multipart/form-data":
                form = await request.form(max_files=1, max_fields=20)
                upload = form.get("file")
                if not isinstance(upload, UploadFile):
                    raise Problem(
                        422,
                        "No file",
                        "send the CSV in a multipart field 'file'",
                        errors=[{"field": "file", "message": "missing"}],
                    )
                filename = upload.filename
                while chunk := await upload.read(1 << 16):
                    out.write(chunk)
                fields = {k: v for k, v in form.items() if isinstance(v, str)}
            else:
                raise Problem(
                    415,
                    "Unsupported media type",
                    "send text/csv, an .xlsx workbook, or multipart/form-data with a 'file' field",
                    errors=[{"field": "Content-Type", "message": content_type}],
                )
    except BaseException:
        os.unlink(path)
        raise
    return path, filename, fields


def _import_options(
    fields: dict[str, str],
    preset: str | None,
    mapping: str | None,
    keep_unmapped: bool | None,
    source_system: str | None,
) -> dict[str, Any]:
    """The import's options from the query or, for a multipart upload, its form fields."""
    preset = fields.get("preset", preset) or None
    keep = (
        keep_unmapped
        if keep_unmapped is not None
        else (fields.get("keep_unmapped", "").lower() in ("1", "true", "yes") or bool(preset))
    )
    system = fields.get("source_system", source_system) or None
    if system is not None and not (0 < len(system) <= 100):
        raise Problem.invalid_fields([{"field": "source_system", "message": "1 to 100 characters"}])
    return {
        "preset": preset,
        "mapping": _parse_mapping(fields.get("mapping", mapping)),
        "keep_unmapped": keep,
        "system": system,
    }


_ImportQuery = Annotated[str | None, Query(description="e.g. x-education")]
_MappingQuery = Annotated[
    str | None,
    Query(description="JSON: column -> field (contact.*, external_id, outcome, outcome.amount, "
          "outcome.currency, outcome.closed_at, created_at, attributes.*, ignore, ...)"),
]  # fmt: skip
_SystemQuery = Annotated[
    str | None,
    Query(description="the system the file comes from: external ids are unique within it "
          "(default: the preset's name, else 'import')"),
]  # fmt: skip


@router.post(
    "/v1/imports/preview",
    tags=["imports"],
    summary="Dry run (admin): detected encoding and delimiter, proposed mapping, first rows "
    "normalised and the problems found; writes nothing",
)
async def preview_import(
    request: Request,
    kit: KitDep,
    _admin: ImportsDep,
    preset: _ImportQuery = None,
    mapping: _MappingQuery = None,
    keep_unmapped: Annotated[bool | None, Query()] = None,
    source_system: _SystemQuery = None,
) -> JSONResponse:
    path, filename, fields = await _spool_body(request)
    try:
        options = _import_options(fields, preset, mapping, keep_unmapped, source_system)
        plan = await asyncio.to_thread(
            importer.plan_file, path, filename, **options, require_mapping=False
        )
        settings = runtime(kit).settings
        answer = await asyncio.to_thread(importer.preview, plan, path, _region(settings))
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
    return JSONResponse({"filename": filename, **answer})


@router.post(
    "/v1/imports",
    responses=ok(rs.ImportStarted, 202),
    status_code=202,
    tags=["imports"],
    summary="Import a CSV or .xlsx (admin): streamed to disk, processed in batches",
)
async def post_import(
    request: Request,
    kit: KitDep,
    _admin: ImportsDep,
    preset: _ImportQuery = None,
    mapping: _MappingQuery = None,
    keep_unmapped: Annotated[bool | None, Query()] = None,
    source_system: _SystemQuery = None,
) -> JSONResponse:
    path, filename, fields = await _spool_body(request)
    try:
        options = _import_options(fields, preset, mapping, keep_unmapped, source_system)
        plan = await asyncio.to_thread(importer.plan_file, path, filename, **options)
        import_id = new_id()
        async with kit.unit_of_work() as uow:
            await store.create_import(
                uow.tx, import_id, filename, plan.columns,
                {**plan.fmt.as_dict(), "source_system": plan.system, "history": plan.history},
            )  # fmt: skip
    except BaseException:
        os.unlink(path)
        raise
    rt = runtime(kit)
    # The kit's: cancelled and awaited if the service stops before the import ends.
    task = kit.spawn(
        importer.run_import(
            kit,
            lambda work: in_transaction(kit, work),
            import_id,
            path,
            plan,
            batch_rows=rt.settings.intake_import_batch_rows,
            region=_region(rt.settings),
        ),
        name=f"import-{import_id}",
    )
    rt.imports[import_id] = task
    task.add_done_callback(lambda _t: rt.imports.pop(import_id, None))
    return JSONResponse(
        {
            "import_id": str(import_id),
            "status": "running",
            "columns": plan.columns,
            **plan.fmt.as_dict(),
            "source_system": plan.system,
            "history": plan.history,
        },
        status_code=202,
        headers={"Location": f"/v1/imports/{import_id}"},
    )


@router.get(
    "/v1/imports/{import_id}",
    responses=ok(rs.ImportStatus),
    tags=["imports"],
    summary="An import's progress and its rejected rows (admin)",
)
async def get_import(
    import_id: uuid.UUID,
    kit: KitDep,
    _admin: ImportsDep,
    rejections: Annotated[int, Query(ge=0, le=10_000)] = 1000,
) -> JSONResponse:
    # The counts and the rejected rows as of one moment: a batch of the running import
    # committing between the two statements would show a row its count does not have.
    async with kit.snapshot() as tx:
        found = await store.get_import(tx, import_id, rejections)
    if found is None:
        raise Problem(
            404,
            "Unknown import",
            f"no import {import_id}",
            errors=[{"field": "import_id", "message": "unknown import"}],
        )
    row, rejected = found
    return JSONResponse(
        {
            "import_id": str(row.import_id),
            "status": row.status,
            "filename": row.filename,
            "rows_read": row.rows_read,
            # the file's data rows, once counted (null before): progress = rows_read of it
            "rows_total": row.rows_total,
            "accepted": row.accepted,
            "rejected": row.rejected,
            "new_leads": row.new_leads,
            "matched": row.matched,
            "unchanged": row.unchanged,
            "history": {"won": row.history_won, "lost": row.history_lost},
            "file": row.file_format,
            "error": row.error,
            "columns": row.mapping,
            "created_at": row.created_at.isoformat(),
            "finished_at": row.finished_at.isoformat() if row.finished_at else None,
            "rejected_rows": [
                {"row": r.row_number, "field": r.field, "reason": r.reason} for r in rejected
            ],
        }
    )
