"""Marketing ops' imports page (issue 27 item 5): upload a CSV or ``.xlsx``, see intake's dry
run (detected format, encoding and delimiter, the proposed mapping, the first rows normalised,
the problems by row), then run the import and watch it (htmx polls its status) until the
rejected rows are listed with their numbers and reasons.

Intake decides everything (``imports`` permission, the file's reading, the mapping's
validity); the console only forwards the file with the person's token and shows the answer.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from starlette.datastructures import UploadFile

from leadflow.console.web import session
from leadflow.console.web.marketing import _denied, _problem
from leadflow.console.web.pages import _form
from leadflow.console.web.render import Ctx, CtxDep
from leadflow.events.access import Permission, public

imports = APIRouter(include_in_schema=False, dependencies=[public()])

PRESETS = ("x-education",)
# The console holds the upload in memory while it forwards it; larger files go straight to
# intake's API (which streams them to disk).
MAX_UPLOAD_BYTES = 50 * 1024 * 1024


@imports.get("/imports", response_class=HTMLResponse)
async def imports_page(ctx: CtxDep) -> HTMLResponse:
    if denied := _denied(ctx, Permission.IMPORTS):
        return denied
    return ctx.page("imports.html", presets=PRESETS)


async def _upload(ctx: Ctx) -> tuple[dict[str, Any], str]:
    """The file and options of the upload form, as intake's call arguments, or an error."""
    form = await _form(ctx.request)
    if not session.csrf_ok(ctx.request, form):
        return {}, "The form expired: reload."
    upload = (await ctx.request.form()).get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return {}, "file: choose a CSV or .xlsx file"
    content = await upload.read(MAX_UPLOAD_BYTES + 1)
    if len(content) > MAX_UPLOAD_BYTES:
        return {}, "file: larger than 50 MB; send it to intake's POST /v1/imports directly"
    params: dict[str, Any] = {}
    mapping = form.get("mapping", "").strip()
    if mapping:
        try:
            json.loads(mapping)
        except ValueError as exc:
            return {}, f"mapping: not valid JSON ({exc})"
        params["mapping"] = mapping
    for name in ("preset", "source_system"):
        if value := form.get(name, "").strip():
            params[name] = value
    kind = upload.content_type or "application/octet-stream"
    return {"params": params, "files": {"file": (upload.filename, content, kind)}}, ""


@imports.post("/imports/preview", response_class=HTMLResponse)
async def preview(ctx: CtxDep) -> HTMLResponse:
    """Intake's dry run of the upload: writes nothing."""
    if denied := _denied(ctx, Permission.IMPORTS):
        return denied
    call, error = await _upload(ctx)
    if error:
        return ctx.page("_result.html", error=error)
    answer = await ctx.api.call("intake", "POST", "/v1/imports/preview", **call)
    if not answer.ok:
        return ctx.page("_result.html", error=f"Not previewed: {_problem(answer)}")
    body = answer.body or {}
    rows = _cells(body.get("rows") or [])
    return ctx.page(
        "_import_preview.html",
        p=body,
        mapping_json=json.dumps(body.get("columns") or body.get("suggested_mapping"), indent=2),
        rows=rows,
        row_columns=[c for c in ROW_COLUMNS if any(r.get(c) for r in rows)],
    )


ROW_COLUMNS = ("row", "external_id", "contact", "attributes", "source", "answers", "consent",
               "occurred_at", "history")  # fmt: skip


def _text(value: Any) -> str:
    """A normalised row's field as a cell: nested documents as ``key: value`` pairs."""
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_text(v)}" for k, v in value.items() if v not in (None, ""))
    if isinstance(value, list):
        return ", ".join(_text(v) for v in value)
    return "" if value is None else str(value)


def _cells(rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [{k: _text(v) for k, v in row.items()} for row in rows]


@imports.post("/imports", response_class=HTMLResponse)
async def start(ctx: CtxDep) -> HTMLResponse:
    if denied := _denied(ctx, Permission.IMPORTS):
        return denied
    call, error = await _upload(ctx)
    if error:
        return ctx.page("_result.html", error=error)
    answer = await ctx.api.call("intake", "POST", "/v1/imports", **call)
    if not answer.ok:
        return ctx.page("_result.html", error=f"Not imported: {_problem(answer)}")
    return ctx.page("_import_status.html", s={"filename": "", **(answer.body or {})})


async def _status(ctx: Ctx, import_id: str) -> HTMLResponse:
    answer = await ctx.api.get("intake", f"/v1/imports/{import_id}")
    if not answer.ok:
        return ctx.page("_result.html", error=_problem(answer))
    whole = not ctx.request.headers.get("hx-request")  # a bookmarked status link: a page
    return ctx.page("import.html" if whole else "_import_status.html", s=answer.body or {})


@imports.get("/imports/{import_id}", response_class=HTMLResponse)
async def status(ctx: CtxDep, import_id: str) -> HTMLResponse:
    """The import's progress: while it runs, the fragment polls itself (htmx)."""
    if denied := _denied(ctx, Permission.IMPORTS):
        return denied
    return await _status(ctx, import_id)
