"""Intake's HTTP edge: inquiries, web forms, badge scans, imports, activities, leads, admin.

Every refusal is problem+json naming the field (``Problem``); every accepted input is in
intake's database (event + outbox) before the answer goes out.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import html
import logging
import os
import random
import secrets
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

import asyncpg
import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from starlette.datastructures import FormData, UploadFile

from leadflow.events import KitDep, ServiceKit, UnitOfWork, kit_of
from leadflow.events.access import Permission, authorize, declares, presented, public
from leadflow.events.envelope import new_id
from leadflow.events.errors import ConcurrencyError, Problem, UnknownLead
from leadflow.intake import commands, domain, importer, store
from leadflow.intake import responses as rs
from leadflow.intake.batching import Idempotency, InquiryBatcher, Pending
from leadflow.intake.commands import ActivityItem, IngestItem
from leadflow.intake.domain import ConsentRecord, FieldError, HygieneError, InquiryDraft
from leadflow.intake.responses import ok
from leadflow.intake.schemas import (
    AccountIn,
    ActivityBatchIn,
    ActivityIn,
    ApiKeyIn,
    ConsentChangeIn,
    ErasureIn,
    FormIn,
    InquiryIn,
    ScanBatchIn,
    ScanIn,
)
from leadflow.intake.security import (
    ApiKey,
    KeyCache,
    RateLimiter,
    TtlCache,
    display_prefix,
    generate_api_key,
    hash_api_key,
)
from leadflow.intake.settings import IntakeSettings

log = logging.getLogger("leadflow.intake")
T = TypeVar("T")
router = APIRouter()


# ---------------------------------------------------------------------------------------
# Runtime state (per app, never at import time)


@dataclass
class Runtime:
    settings: IntakeSettings
    key_limiter: RateLimiter
    ip_limiter: RateLimiter
    keys: KeyCache
    forms: TtlCache[FormIn | None]
    batcher: InquiryBatcher
    imports: dict[uuid.UUID, asyncio.Task[None]] = field(default_factory=dict)

    @classmethod
    def build(cls, settings: IntakeSettings, kit: ServiceKit) -> Runtime:
        return cls(
            settings,
            RateLimiter(settings.intake_key_rate_per_second, settings.intake_key_burst),
            RateLimiter(settings.intake_ip_rate_per_second, settings.intake_ip_burst),
            KeyCache(settings.intake_api_key_cache_seconds),
            TtlCache(settings.intake_api_key_cache_seconds),
            InquiryBatcher(
                lambda work: in_transaction(kit, work),
                max_batch=settings.intake_group_commit_max,
                concurrency=settings.intake_group_commit_transactions,
            ),
        )


def runtime(kit: ServiceKit[Runtime]) -> Runtime:
    return kit.state


def client_ip(request: Request, settings: IntakeSettings) -> str:
    if settings.intake_trust_forwarded_for:
        forwarded = request.headers.get("x-forwarded-for")
        if forwarded:
            return forwarded.split(",")[0].strip()
    return request.client.host if request.client else "unknown"


def _limit(limiter: RateLimiter, subject: str, what: str) -> None:
    retry = limiter.check(subject)
    if retry is not None:
        seconds = max(1, int(retry + 0.999))
        raise Problem(
            429,
            "Too many requests",
            f"rate limit per {what} exceeded; retry later",
            errors=[{"field": what, "message": f"retry after {seconds}s"}],
            headers={"Retry-After": str(seconds)},
        )


# ---------------------------------------------------------------------------------------
# Authentication


async def authenticate(
    request: Request, kit: ServiceKit, api_key: str | None, scope: str
) -> ApiKey:
    rt = runtime(kit)
    if not api_key:
        _limit(rt.ip_limiter, client_ip(request, rt.settings), "client IP")
        raise Problem(
            401,
            "Unauthorized",
            "an API key is required",
            errors=[{"field": "X-Api-Key", "message": "missing"}],
            headers={"WWW-Authenticate": "ApiKey"},
        )
    key_hash = hash_api_key(api_key)

    async def load() -> ApiKey | None:
        async with kit.connect() as conn:
            return await store.find_api_key(conn, key_hash)

    key = await rt.keys.lookup(key_hash, load)
    if key is None or key.revoked:
        _limit(rt.ip_limiter, client_ip(request, rt.settings), "client IP")
        raise Problem(
            401,
            "Unauthorized",
            "API key is revoked" if key is not None else "API key is not valid",
            errors=[
                {"field": "X-Api-Key", "message": "revoked" if key is not None else "unknown key"}
            ],
            headers={"WWW-Authenticate": "ApiKey"},
        )
    if scope not in key.scopes:
        raise Problem(
            403,
            "Forbidden",
            f"this API key lacks the {scope!r} scope",
            errors=[{"field": "X-Api-Key", "message": f"needs scope {scope}"}],
        )
    _limit(rt.key_limiter, key.key_id, "API key")
    return key


# The capture routes read their headers from the request themselves (documented through
# ``openapi_extra``): each header FastAPI resolves as a parameter, and each dependency level,
# costs CPU on every request; on POST /v1/inquiries the plain reads saved about 60 us of
# ~180 (in-process ASGI, its route signature with and without them).
API_KEY_PARAMETER: dict[str, Any] = {
    "name": "X-Api-Key",
    "in": "header",
    "required": True,
    "description": "an API key with the route's scope (inquiries, scans or activities)",
    "schema": {"type": "string"},
}
IDEMPOTENCY_KEY_MAX = 200


_CAPTURE = {
    "inquiries": Permission.CAPTURE_INQUIRIES,
    "scans": Permission.CAPTURE_SCANS,
    "activities": Permission.CAPTURE_ACTIVITIES,
}


def require_scope(scope: str) -> Callable[..., Awaitable[ApiKey]]:
    @declares(_CAPTURE[scope])
    async def dependency(request: Request) -> ApiKey:
        return await authenticate(request, kit_of(request), request.headers.get("x-api-key"), scope)

    return dependency


def idempotency_key_of(request: Request) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is not None and len(key) > IDEMPOTENCY_KEY_MAX:
        raise Problem.invalid_fields(
            [{"field": "Idempotency-Key", "message": f"at most {IDEMPOTENCY_KEY_MAX} characters"}]
        )
    return key or None


def staff(permission: Permission) -> Callable[[Request], Awaitable[str]]:
    """A staff route's permission (see ``leadflow.events.access``): a person's token with a
    role that holds it, the admin token, or, for automation, an API key with the ``admin``
    scope (acting as admin on intake's routes only). Yields who acted, for the audit."""

    @declares(permission)
    async def check(request: Request) -> str:
        kit = kit_of(request)
        api_key = request.headers.get("x-api-key")
        if presented(request) is None and api_key:
            key = await authenticate(request, kit, api_key, "admin")
            return f"api-key:{key.key_id}"
        try:
            who = await authorize(request, permission)
        except Problem as exc:
            if exc.status == 401 and presented(request) is not None:  # guessing tokens
                rt = runtime(kit)
                _limit(rt.ip_limiter, client_ip(request, rt.settings), "client IP")
            raise
        return who.subject

    return check


ImportsDep = Annotated[str, Depends(staff(Permission.IMPORTS))]
LeadsReadDep = Annotated[str, Depends(staff(Permission.LEADS_READ))]
ConsentDep = Annotated[str, Depends(staff(Permission.CONSENT))]
ErasureDep = Annotated[str, Depends(staff(Permission.ERASURE))]
FormsDep = Annotated[str, Depends(staff(Permission.FORMS))]
ApiKeysDep = Annotated[str, Depends(staff(Permission.API_KEYS))]
AccountsDep = Annotated[str, Depends(staff(Permission.ACCOUNTS))]


# ---------------------------------------------------------------------------------------
# Transactions with retry


async def in_transaction(
    kit: ServiceKit, work: Callable[[UnitOfWork], Awaitable[T]], attempts: int = 6
) -> T:
    """Run ``work`` in one unit of work; a lost race (unique email, stream version) is
    retried from scratch, and the retry then sees the winner's rows. (A statement sent
    straight to asyncpg reports the unique violation as asyncpg's own error.)"""
    for attempt in range(attempts):
        try:
            async with kit.unit_of_work() as uow:
                result = await work(uow)
            return result
        except (IntegrityError, asyncpg.UniqueViolationError, ConcurrencyError):
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(random.uniform(0, 0.005 * (attempt + 1)))
    raise AssertionError("unreachable")


def _hygiene_problem(exc: HygieneError) -> Problem:
    return Problem.invalid_fields([e.as_dict() for e in exc.errors], title="Invalid input")


def _validation_problem(exc: ValidationError, prefix: str = "") -> list[dict[str, str]]:
    out = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        out.append(
            {"field": f"{prefix}{loc}" if loc else prefix.rstrip("."), "message": err["msg"]}
        )
    return out


def _draft_from_model(body: InquiryIn) -> InquiryDraft:
    return InquiryDraft(
        contact=body.contact.model_dump(),
        source=body.source.model_dump(exclude_none=True),
        answers=body.answers.model_dump(exclude_none=True),
        consent=body.consent.model_dump() if body.consent else None,
        notes=body.notes,
        rating=body.rating,
        external_id=body.external_id,
        occurred_at=body.occurred_at,
    )


def _region(settings: IntakeSettings) -> str | None:
    return settings.intake_default_region or None


# ---------------------------------------------------------------------------------------
# Inquiries


@router.post(
    "/v1/inquiries",
    status_code=202,
    responses=ok(rs.Accepted, 202),
    tags=["capture"],
    summary="Accept an inquiry (API key with scope 'inquiries')",
    openapi_extra={
        "parameters": [
            API_KEY_PARAMETER,
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": "a retry with the same key and body gets the first answer",
                "schema": {"type": "string", "maxLength": IDEMPOTENCY_KEY_MAX},
            },
        ]
    },
)
async def post_inquiry(
    body: InquiryIn,
    request: Request,
    key: Annotated[ApiKey, Depends(require_scope("inquiries"))],
) -> Response:
    kit = kit_of(request)
    idempotency_key = idempotency_key_of(request)
    settings = runtime(kit).settings
    try:
        inquiry = domain.clean_inquiry(
            _draft_from_model(body), channel="api", default_region=_region(settings)
        )
    except HygieneError as exc:
        raise _hygiene_problem(exc) from None
    idempotency = None
    if idempotency_key:  # the body's hash is only needed to recognise a replay
        request_hash = hashlib.sha256(
            orjson.dumps(body.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
        ).hexdigest()
        idempotency = Idempotency(f"inquiries:{key.key_id}", idempotency_key, request_hash)
    item = IngestItem(inquiry, "api", new_id(), body.anonymous_id)
    outcome = await runtime(kit).batcher.submit(Pending(item, idempotency))
    headers = {"Idempotent-Replayed": "true"} if outcome.replayed else {}
    return Response(
        orjson.dumps(outcome.answer),
        status_code=202,
        headers=headers,
        media_type="application/json",
    )


# ---------------------------------------------------------------------------------------
# Web forms

DEFAULT_FIELD_MAP: dict[str, str] = {
    **{f: f"contact.{f}" for f in domain.CONTACT_FIELDS},
    "name": "contact.full_name",
    **{
        f: f"source.{f}"
        for f in ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "referrer")
    },
    **{
        f: f"answers.{f}"
        for f in (
            "compelling_event",
            "timeframe",
            "budget",
            "authority",
            "company_size",
            "product_interest",
            "opportunity_size",
            "comments",
        )
    },
    "message": "answers.comments",
    "marketing_opt_in": "consent.marketing_opt_in",
    "anonymous_id": "anonymous_id",
}

# Every lead field a web form's posted field may feed: what ``_form_draft`` can place.
FORM_TARGETS: frozenset[str] = frozenset(
    {f"contact.{f}" for f in domain.CONTACT_FIELDS}
    | {"contact.full_name", "consent.marketing_opt_in", "anonymous_id"}
    | {f"source.{f}" for f in domain.SourceInfo.model_fields}
    | {f"answers.{f}" for f in domain.QualificationAnswers.model_fields}
)


def check_field_map(form: FormIn) -> None:
    """Refuse a form whose ``field_map`` feeds a lead field that does not exist: saved
    as is, every post would silently drop that field (a typo like ``contact.emial`` loses
    the address of every lead the form captures)."""
    errors = [
        {
            "field": f"field_map.{name}",
            "message": f"unknown target {target!r}; one of {', '.join(sorted(FORM_TARGETS))}",
        }
        for name, target in form.field_map.items()
        if target not in FORM_TARGETS
    ]
    if errors:
        raise Problem.invalid_fields(errors, "Invalid field map")


async def _load_form(kit: ServiceKit, form_key: str, *, cached: bool = True) -> FormIn:
    """The form's validated definition. Public posts read it through a short cache (the
    API-key cache's TTL; this replica's own changes take effect at once), admin reads not."""

    async def load() -> FormIn | None:
        async with kit.connect() as conn:
            definition = await store.get_form(conn, form_key)
        return None if definition is None else FormIn.model_validate(definition)

    form = await (runtime(kit).forms.lookup(form_key, load) if cached else load())
    if form is None:
        raise Problem(
            404,
            "Unknown form",
            f"no form with key {form_key!r}",
            errors=[{"field": "form_key", "message": "unknown form"}],
        )
    return form


def _own_origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}".lower()


def _check_origin(request: Request, form: FormIn) -> str | None:
    """The allowed Origin to echo in CORS headers; a browser post from any other origin is
    refused. Posts without Origin (server-to-server) are not a CORS matter."""
    origin = request.headers.get("origin")
    if origin is None:
        return None
    normalized = origin.strip().rstrip("/").lower()
    if normalized in form.allowed_origins or normalized == _own_origin(request):
        return origin
    raise Problem(
        403,
        "Origin not allowed",
        f"origin {origin!r} may not post this form",
        errors=[{"field": "Origin", "message": "not an allowed origin"}],
    )


def _cors(origin: str | None) -> dict[str, str]:
    if origin is None:
        return {}
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}


@router.options(
    "/v1/forms/{form_key}",
    tags=["capture"],
    summary="CORS preflight",
    dependencies=[public()],
)
async def preflight_form(form_key: str, request: Request, kit: KitDep) -> Response:
    form = await _load_form(kit, form_key)
    origin = _check_origin(request, form)
    headers = {
        **_cors(origin),
        "Access-Control-Allow-Methods": "POST, OPTIONS",
        "Access-Control-Allow-Headers": "Content-Type, Accept",
        "Access-Control-Max-Age": "600",
    }
    return Response(status_code=204, headers=headers)


def _form_draft(
    form: FormIn, form_key: str, data: FormData, request: Request
) -> tuple[InquiryDraft, str | None]:
    mapping = {**DEFAULT_FIELD_MAP, **form.field_map}
    groups: dict[str, dict[str, Any]] = {"contact": {}, "source": {}, "answers": {}, "consent": {}}
    top: dict[str, Any] = {}
    for name, value in data.multi_items():
        if isinstance(value, UploadFile) or name == form.honeypot_field:
            continue
        target = mapping.get(name)
        if target is None or domain.is_blank(value):
            continue
        group, _, attr = target.partition(".")
        if group in groups:
            groups[group][attr] = value
        else:
            top[group] = value
    contact = groups["contact"]
    full = contact.pop("full_name", None)
    if full and not contact.get("first_name") and not contact.get("last_name"):
        first, _, last = str(full).strip().partition(" ")
        contact["first_name"], contact["last_name"] = first, last
    errors = []
    for required in form.required:
        target = mapping.get(required, required)
        group, _, attr = target.partition(".")
        if domain.is_blank(groups.get(group, {}).get(attr) if attr else top.get(group)):
            errors.append(FieldError(required, f"{required} is required"))
    if errors:
        raise HygieneError(errors)
    consent: dict[str, Any] | None = None
    if "marketing_opt_in" in groups["consent"]:
        consent = {**groups["consent"], "text_version": form.consent_text_version}
    elif form.consent_text_version:
        # The form shows a consent checkbox; an unticked box is not posted at all. It means
        # "not given" for a new lead, and nothing at all for one that already answered.
        consent = {
            "marketing_opt_in": False,
            "text_version": form.consent_text_version,
            "stated": False,
        }
    source = {"form_id": form_key, "campaign": form.campaign, **groups["source"]}
    source.setdefault("referrer", request.headers.get("referer"))
    draft = InquiryDraft(contact=contact, source=source, answers=groups["answers"], consent=consent)
    return draft, top.get("anonymous_id")


def _form_answer(
    request: Request, form: FormIn, form_key: str, origin: str | None, answer: dict[str, Any]
) -> Response:
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse(answer, status_code=202, headers=_cors(origin))
    target = form.thank_you_url or str(request.url_for("form_thanks", form_key=form_key))
    return RedirectResponse(target, status_code=303, headers=_cors(origin))


@router.post(
    "/v1/forms/{form_key}",
    status_code=202,
    tags=["capture"],
    responses={**ok(rs.Accepted, 202), 303: {"description": "To the thank-you page"}},
    summary="A web form post (urlencoded or multipart): 303 to the thank-you page, "
    "or JSON with Accept: application/json",
    dependencies=[public()],
)
async def post_form(form_key: str, request: Request, kit: KitDep) -> Response:
    rt = runtime(kit)
    _limit(rt.ip_limiter, client_ip(request, rt.settings), "client IP")
    form = await _load_form(kit, form_key)
    origin = _check_origin(request, form)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        raise Problem(
            415,
            "Unsupported media type",
            "post the form as application/x-www-form-urlencoded or multipart/form-data",
            errors=[{"field": "Content-Type", "message": f"{content_type or 'none'}"}],
        )
    data = await request.form(max_files=5, max_fields=200)
    honeypot = data.get(form.honeypot_field)
    if isinstance(honeypot, str) and honeypot.strip():
        # A bot filled the invisible field: drop it, but answer exactly like a success so
        # it learns nothing.
        log.info("honeypot filled on form %s; dropped", form_key)
        fake = {
            "lead_id": str(new_id()),
            "inquiry_id": str(new_id()),
            "matched": False,
            "match_reason": None,
        }
        return _form_answer(request, form, form_key, origin, fake)
    try:
        draft, anonymous_id = _form_draft(form, form_key, data, request)
        inquiry = domain.clean_inquiry(
            draft, channel="web_form", default_region=_region(rt.settings)
        )
    except HygieneError as exc:
        problem = _hygiene_problem(exc)
        problem.headers.update(_cors(origin))
        raise problem from None
    item = IngestItem(inquiry, "web_form", new_id(), anonymous_id)
    outcome = await rt.batcher.submit(Pending(item))
    return _form_answer(request, form, form_key, origin, outcome.answer)


@router.get(
    "/v1/forms/{form_key}/thanks",
    name="form_thanks",
    tags=["capture"],
    response_class=HTMLResponse,
    include_in_schema=False,
    dependencies=[public()],
)
async def form_thanks(form_key: str) -> HTMLResponse:
    return HTMLResponse(
        "<!doctype html><title>Thank you</title><h1>Thank you!</h1><p>We will be in touch soon.</p>"
    )


@router.get(
    "/v1/forms/{form_key}/example",
    tags=["capture"],
    response_class=HTMLResponse,
    summary="A working sample HTML form that posts to this form key",
    dependencies=[public()],
)
async def form_example(form_key: str, request: Request, kit: KitDep) -> HTMLResponse:
    form = await _load_form(kit, form_key)
    action = html.escape(str(request.url_for("post_form", form_key=form_key)))
    honeypot = html.escape(form.honeypot_field)
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(form.name)}</title>
<style>body{{font-family:sans-serif;max-width:32rem;margin:2rem auto}}
label{{display:block;margin:.6rem 0}} input,select,textarea{{width:100%;padding:.3rem}}
.hp{{position:absolute;left:-10000px}}</style></head>
<body><h1>{html.escape(form.name)}</h1>
<form id="lead-form" method="post" action="{action}">
  <label>Email * <input type="email" name="email" required autocomplete="email"></label>
  <label>First name <input name="first_name" autocomplete="given-name"></label>
  <label>Last name <input name="last_name" autocomplete="family-name"></label>
  <label>Company <input name="company" autocomplete="organization"></label>
  <label>Job title <input name="title"></label>
  <label>Phone <input type="tel" name="phone" autocomplete="tel"></label>
  <label>Country <input name="country" autocomplete="country-name"></label>
  <label>What are you looking to solve? <textarea name="comments"></textarea></label>
  <label>Timeframe <select name="timeframe"><option value="">Select</option>
    <option>This quarter</option><option>This year</option><option>Just looking</option>
  </select></label>
  <label class="hp" aria-hidden="true">Leave this empty
    <input name="{honeypot}" tabindex="-1" autocomplete="off"></label>
  <input type="hidden" name="utm_source" value="example-page">
  <label><input type="checkbox" name="marketing_opt_in" value="yes" style="width:auto">
    Send me product news (you can unsubscribe at any time)</label>
  <button type="submit">Send</button>
</form></body></html>"""
    return HTMLResponse(page)


# ---------------------------------------------------------------------------------------
# Badge scans


def _scan_item(
    raw: dict[str, Any], batch: ScanBatchIn, device: str, index: int, settings: IntakeSettings
) -> tuple[str, IngestItem] | dict[str, Any]:
    scan_id = str(raw.get("scan_id", "")) or f"#{index}"
    try:
        scan = ScanIn.model_validate(raw)
    except ValidationError as exc:
        return {
            "scan_id": scan_id,
            "status": "rejected",
            "errors": _validation_problem(exc, f"items[{index}]."),
        }
    try:
        if isinstance(scan.badge, str):
            fields = domain.parse_badge(scan.badge)
            notes_in_card = fields.pop("notes", None)
        else:
            fields, notes_in_card = scan.badge.model_dump(), None
        notes = "\n".join(n for n in (scan.notes, notes_in_card) if n) or None
        draft = InquiryDraft(
            contact=fields,
            source={"event_id": batch.event_id, "campaign": batch.campaign, "device_id": device},
            answers=scan.answers.model_dump(exclude_none=True),
            notes=notes,
            rating=scan.rating,
            occurred_at=scan.scanned_at,
        )
        inquiry = domain.clean_inquiry(
            draft, channel="badge_scan", default_region=_region(settings)
        )
    except domain.BadgeFormatError as exc:
        return {
            "scan_id": scan.scan_id,
            "status": "rejected",
            "errors": [{"field": f"items[{index}].badge", "message": str(exc)}],
        }
    except HygieneError as exc:
        return {
            "scan_id": scan.scan_id,
            "status": "rejected",
            "errors": [
                {
                    "field": f"items[{index}].badge.{e.field.split('.', 1)[-1]}"
                    if e.field.startswith("contact.")
                    else f"items[{index}].{e.field}",
                    "message": e.message,
                }
                for e in exc.errors
            ],
        }
    return scan.scan_id, IngestItem(inquiry, "badge_scan", new_id())


@router.post(
    "/v1/scans",
    responses=ok(rs.ScanBatchResult),
    tags=["capture"],
    summary="A badge scanner's batch (device API key with scope 'scans')",
    openapi_extra={"parameters": [API_KEY_PARAMETER]},
)
async def post_scans(
    batch: ScanBatchIn,
    kit: KitDep,
    key: Annotated[ApiKey, Depends(require_scope("scans"))],
) -> JSONResponse:
    settings = runtime(kit).settings
    if len(batch.items) > settings.intake_max_batch_items:
        raise Problem(
            413,
            "Batch too large",
            f"at most {settings.intake_max_batch_items} scans per request",
            errors=[{"field": "items", "message": "too many items"}],
        )
    device = key.device
    results: list[dict[str, Any] | None] = []
    candidates: list[tuple[int, str, IngestItem]] = []
    for index, raw in enumerate(batch.items):
        parsed = _scan_item(raw, batch, device, index, settings)
        if isinstance(parsed, dict):
            results.append(parsed)
        else:
            results.append(None)
            candidates.append((index, parsed[0], parsed[1]))

    async def work(uow: UnitOfWork) -> dict[int, dict[str, Any]]:
        out: dict[int, dict[str, Any]] = {}
        seen = await store.seen_scans(uow.conn, device, [c[1] for c in candidates])
        fresh: list[tuple[int, str, IngestItem]] = []
        in_batch: set[str] = set()
        for index, scan_id, item in candidates:
            if scan_id in seen:
                lead_id, inquiry_id = seen[scan_id]
                out[index] = {
                    "scan_id": scan_id,
                    "status": "duplicate",
                    "lead_id": str(lead_id),
                    "inquiry_id": str(inquiry_id),
                }
            elif scan_id in in_batch:
                out[index] = {"scan_id": scan_id, "status": "duplicate"}
            else:
                in_batch.add(scan_id)
                fresh.append((index, scan_id, item))
        ingested = await commands.ingest(uow, [f[2] for f in fresh])
        await store.record_scans(
            uow.conn,
            device,
            [
                (scan_id, r.lead_id, r.inquiry_id)
                for (_, scan_id, _), r in zip(fresh, ingested, strict=True)
            ],
        )
        for (index, scan_id, _), r in zip(fresh, ingested, strict=True):
            out[index] = {
                "scan_id": scan_id,
                "status": "accepted",
                "lead_id": str(r.lead_id),
                "inquiry_id": str(r.inquiry_id),
                "matched": r.matched,
            }
        return out

    decided = await in_transaction(kit, work) if candidates else {}
    final = [r if r is not None else decided[i] for i, r in enumerate(results)]
    counts = {
        s: sum(1 for r in final if r["status"] == s) for s in ("accepted", "duplicate", "rejected")
    }
    return JSONResponse({"device_id": device, "event_id": batch.event_id, **counts, "items": final})


# ---------------------------------------------------------------------------------------
# Activities


@router.post(
    "/v1/activities",
    responses=ok(rs.ActivityBatchResult),
    tags=["capture"],
    summary="A batch of engagement activity (API key with scope 'activities')",
    openapi_extra={"parameters": [API_KEY_PARAMETER]},
)
async def post_activities(
    batch: ActivityBatchIn,
    kit: KitDep,
    key: Annotated[ApiKey, Depends(require_scope("activities"))],
) -> JSONResponse:
    settings = runtime(kit).settings
    if len(batch.items) > settings.intake_max_batch_items:
        raise Problem(
            413,
            "Batch too large",
            f"at most {settings.intake_max_batch_items} activities per request",
            errors=[{"field": "items", "message": "too many items"}],
        )
    results: list[dict[str, Any] | None] = []
    valid: list[tuple[int, ActivityItem]] = []
    for index, raw in enumerate(batch.items):
        try:
            item = ActivityIn.model_validate(raw)
            email = domain.normalize_email(item.email) if item.email else None
            lead_id = uuid.UUID(item.lead_id) if item.lead_id else None
        except ValidationError as exc:
            results.append(
                {
                    "activity_id": raw.get("activity_id"),
                    "status": "rejected",
                    "errors": _validation_problem(exc, f"items[{index}]."),
                }
            )
            continue
        except ValueError as exc:
            which = "lead_id" if "UUID" in str(exc) or "hexadecimal" in str(exc) else "email"
            results.append(
                {
                    "activity_id": raw.get("activity_id"),
                    "status": "rejected",
                    "errors": [{"field": f"items[{index}].{which}", "message": str(exc)}],
                }
            )
            continue
        if not (email or lead_id or item.anonymous_id):
            results.append(
                {
                    "activity_id": item.activity_id,
                    "status": "rejected",
                    "errors": [
                        {
                            "field": f"items[{index}]",
                            "message": "give email, lead_id or anonymous_id",
                        }
                    ],
                }
            )
            continue
        results.append(None)
        valid.append(
            (
                index,
                ActivityItem(
                    activity_id=item.activity_id or str(new_id()),
                    activity_type=item.type,
                    occurred_at=item.occurred_at,
                    email=email,
                    lead_id=lead_id,
                    anonymous_id=item.anonymous_id,
                    url=item.url,
                    content_id=item.content_id,
                    campaign=item.campaign,
                    properties=item.properties,
                ),
            )
        )

    async def work(uow: UnitOfWork) -> list[dict[str, Any]]:
        return await commands.record_activities(uow, [v[1] for v in valid])

    recorded = await in_transaction(kit, work) if valid else []
    by_index = {index: r for (index, _), r in zip(valid, recorded, strict=True)}
    final = [r if r is not None else by_index[i] for i, r in enumerate(results)]
    counts = {
        s: sum(1 for r in final if r["status"] == s)
        for s in ("accepted", "anonymous", "duplicate", "rejected")
    }
    return JSONResponse({**counts, "items": final})


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
                uow.conn, import_id, filename, plan.columns,
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
    async with kit.connect() as conn:
        found = await store.get_import(conn, import_id, rejections)
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


# ---------------------------------------------------------------------------------------
# Leads: reads, consent, erasure


def _profile(row: Any) -> dict[str, Any]:
    return {
        "lead_id": str(row.lead_id),
        "stage": row.stage,
        "contact": row.contact or {},
        "emails": list(row.emails or []),
        "consent": row.consent,
        "do_not_contact": bool(row.do_not_contact),
        "account": row.account,
        "flags": row.flags,
        "inquiries": row.inquiries,
        "merged_into": str(row.merged_into) if row.merged_into else None,
        "erased": row.erased_at is not None,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
    }


@router.get(
    "/v1/leads/{lead_id}",
    tags=["leads"],
    responses=ok(rs.LeadProfile),
    summary="A lead's current profile (admin)",
)
async def get_lead(lead_id: uuid.UUID, kit: KitDep, _admin: LeadsReadDep) -> JSONResponse:
    async with kit.connect() as conn:
        row = await store.get_lead(conn, lead_id)
    if row is None:
        raise UnknownLead(lead_id)
    return JSONResponse(_profile(row))


@router.get(
    "/v1/leads", tags=["leads"], responses=ok(rs.LeadList), summary="Find a lead by email (admin)"
)
async def find_lead(
    kit: KitDep, _admin: LeadsReadDep, email: Annotated[str, Query(max_length=320)]
) -> JSONResponse:
    try:
        normalized = domain.normalize_email(email)
    except ValueError as exc:
        raise Problem(
            422, "Invalid email", str(exc), errors=[{"field": "email", "message": str(exc)}]
        ) from None
    async with kit.connect() as conn:
        row = await store.find_lead_by_email(conn, normalized)
    return JSONResponse({"items": [_profile(row)] if row is not None else []})


@router.post(
    "/v1/leads/{lead_id}/consent",
    responses=ok(rs.ConsentAnswer),
    tags=["leads"],
    summary="Record marketing e-mail consent and/or do-not-contact (admin)",
    description="``marketing_opt_in`` governs nurture e-mail only; ``do_not_contact`` records "
    "that the person asked for no contact at all, which takes the lead away from sales too "
    "(and lifting it reinstates the lead). Either or both may be given (docs/consent.md).",
)
async def post_consent(
    lead_id: uuid.UUID, body: ConsentChangeIn, kit: KitDep, _admin: ConsentDep
) -> JSONResponse:
    if body.marketing_opt_in is None and body.do_not_contact is None:
        raise Problem.invalid_fields(
            [
                FieldError(
                    "marketing_opt_in", "give marketing_opt_in, do_not_contact or both"
                ).as_dict(),
                FieldError(
                    "do_not_contact", "give marketing_opt_in, do_not_contact or both"
                ).as_dict(),
            ]
        )
    record = None
    if body.marketing_opt_in is not None:
        record = ConsentRecord(
            marketing_opt_in=body.marketing_opt_in,
            text_version=body.text_version,
            source=body.source or "api",
            given_at=kit.clock.now(),
        )

    async def work(uow: UnitOfWork) -> dict[str, bool]:
        changed: dict[str, bool] = {}
        if record is not None:
            changed["marketing_opt_in"] = await commands.change_consent(uow, lead_id, record)
        if body.do_not_contact is not None:
            changed["do_not_contact"] = await commands.change_do_not_contact(
                uow, lead_id, body.do_not_contact, body.reason, body.source or "api"
            )
        return changed

    changed = await in_transaction(kit, work)
    answer: dict[str, Any] = {"lead_id": str(lead_id), "changed": any(changed.values())}
    if body.marketing_opt_in is not None:
        answer["marketing_opt_in"] = body.marketing_opt_in
    if body.do_not_contact is not None:
        answer["do_not_contact"] = body.do_not_contact
    return JSONResponse(answer)


@router.delete(
    "/v1/leads/{lead_id}",
    tags=["leads"],
    responses=ok(rs.Erased),
    summary="Erase a lead's personal data by crypto-shredding (admin)",
)
async def delete_lead(
    lead_id: uuid.UUID,
    kit: KitDep,
    admin: ErasureDep,
    reason: Annotated[str | None, Query(max_length=500)] = None,
) -> JSONResponse:
    body = ErasureIn(reason=reason, requested_by=admin)

    async def work(uow: UnitOfWork) -> list[uuid.UUID]:
        return await commands.erase(uow, lead_id, body.reason, body.requested_by)

    erased = await in_transaction(kit, work)
    return JSONResponse({"lead_id": str(lead_id), "erased": [str(i) for i in erased]})


# ---------------------------------------------------------------------------------------
# Admin: forms, API keys, accounts


@router.post(
    "/v1/admin/forms",
    status_code=201,
    tags=["admin"],
    responses=ok(rs.Form, 201),
    summary="Create a form",
)
async def create_form(body: FormIn, kit: KitDep, _admin: FormsDep) -> JSONResponse:
    check_field_map(body)
    form_key = body.form_key or f"f_{secrets.token_urlsafe(12)}"
    definition = body.model_copy(update={"form_key": form_key}).model_dump()
    async with kit.unit_of_work() as uow:
        if await store.get_form(uow.conn, form_key) is not None:
            raise Problem(
                409,
                "Form exists",
                f"form {form_key!r} exists; PUT replaces it",
                errors=[{"field": "form_key", "message": "already exists"}],
            )
        await store.put_form(uow.conn, form_key, definition)
    runtime(kit).forms.forget(form_key)
    return JSONResponse(
        definition, status_code=201, headers={"Location": f"/v1/admin/forms/{form_key}"}
    )


@router.put(
    "/v1/admin/forms/{form_key}",
    tags=["admin"],
    responses=ok(rs.Form),
    summary="Create or replace a form",
)
async def put_form(form_key: str, body: FormIn, kit: KitDep, _admin: FormsDep) -> JSONResponse:
    if body.form_key not in (None, form_key):
        raise Problem(
            422,
            "Form key mismatch",
            "the body names another form key",
            errors=[{"field": "form_key", "message": "differs from the path"}],
        )
    check_field_map(body)
    definition = body.model_copy(update={"form_key": form_key}).model_dump()
    FormIn.model_validate(definition)
    async with kit.unit_of_work() as uow:
        await store.put_form(uow.conn, form_key, definition)
    runtime(kit).forms.forget(form_key)
    return JSONResponse(definition)


@router.get("/v1/admin/forms", tags=["admin"], responses=ok(rs.FormList), summary="List forms")
async def list_forms(kit: KitDep, _admin: FormsDep) -> JSONResponse:
    async with kit.connect() as conn:
        return JSONResponse({"items": await store.list_forms(conn)})


@router.get("/v1/admin/forms/{form_key}", tags=["admin"], responses=ok(rs.Form), summary="One form")
async def get_form(form_key: str, kit: KitDep, _admin: FormsDep) -> JSONResponse:
    return JSONResponse((await _load_form(kit, form_key, cached=False)).model_dump())


@router.delete(
    "/v1/admin/forms/{form_key}", status_code=204, tags=["admin"], summary="Delete a form"
)
async def delete_form(form_key: str, kit: KitDep, _admin: FormsDep) -> Response:
    async with kit.unit_of_work() as uow:
        if not await store.delete_form(uow.conn, form_key):
            raise Problem(
                404,
                "Unknown form",
                f"no form with key {form_key!r}",
                errors=[{"field": "form_key", "message": "unknown form"}],
            )
    runtime(kit).forms.forget(form_key)
    return Response(status_code=204)


@router.post(
    "/v1/admin/api-keys",
    status_code=201,
    responses=ok(rs.ApiKeyIssued, 201),
    tags=["admin"],
    summary="Create an API key (the key is shown once, only its hash is kept)",
)
async def create_api_key(body: ApiKeyIn, kit: KitDep, _admin: ApiKeysDep) -> JSONResponse:
    key = generate_api_key()
    key_id = new_id()
    async with kit.unit_of_work() as uow:
        await store.insert_api_key(
            uow.conn,
            key_id,
            body.name,
            hash_api_key(key),
            display_prefix(key),
            body.scopes,
            body.device_id,
        )
    return JSONResponse(
        {
            "key_id": str(key_id),
            "key": key,
            "name": body.name,
            "scopes": body.scopes,
            "device_id": body.device_id,
            "prefix": display_prefix(key),
        },
        status_code=201,
    )


@router.get(
    "/v1/admin/api-keys",
    tags=["admin"],
    responses=ok(rs.ApiKeyList),
    summary="List API keys (never the keys)",
)
async def list_api_keys(kit: KitDep, _admin: ApiKeysDep) -> JSONResponse:
    async with kit.connect() as conn:
        rows = await store.list_api_keys(conn)
    return JSONResponse(
        {
            "items": [
                {
                    **r,
                    "key_id": str(r["key_id"]),
                    "created_at": r["created_at"].isoformat(),
                    "revoked_at": r["revoked_at"].isoformat() if r["revoked_at"] else None,
                }
                for r in rows
            ]
        }
    )


@router.delete(
    "/v1/admin/api-keys/{key_id}", status_code=204, tags=["admin"], summary="Revoke an API key"
)
async def revoke_api_key(key_id: uuid.UUID, kit: KitDep, _admin: ApiKeysDep) -> Response:
    async with kit.unit_of_work() as uow:
        found = await store.revoke_api_key(uow.conn, key_id, kit.clock.now())
    if not found:
        raise Problem(
            404,
            "Unknown API key",
            f"no API key {key_id}",
            errors=[{"field": "key_id", "message": "unknown key"}],
        )
    runtime(kit).keys.clear()
    return Response(status_code=204)


@router.put(
    "/v1/admin/accounts/{account_domain}",
    responses=ok(rs.Account),
    tags=["admin"],
    summary="Register a company account by its domain (for lead-to-account match)",
)
async def put_account(
    account_domain: str, body: AccountIn, kit: KitDep, _admin: AccountsDep
) -> JSONResponse:
    account_domain = account_domain.strip().lower()
    if "." not in account_domain or domain.is_free_mail(account_domain):
        raise Problem(
            422,
            "Invalid domain",
            "give a company domain (not free-mail)",
            errors=[{"field": "account_domain", "message": "not a company domain"}],
        )
    if body.owner_rep_id is not None:
        raise Problem(
            422,
            "Account owners are routing's",
            "intake matches leads to accounts; who owns an account is set in routing, which "
            f"assigns by it: PUT /v1/routing/accounts/{account_domain} "
            f'{{"rep_id": "{body.owner_rep_id}"}} (routing\'s admin API)',
            errors=[
                {
                    "field": "owner_rep_id",
                    "message": "set account owners with routing's "
                    "PUT /v1/routing/accounts/{account_key}",
                }
            ],
            extra={"owner_api": f"/v1/routing/accounts/{account_domain}"},
        )
    account = domain.Account(body.account_id, account_domain, body.name, None)
    async with kit.unit_of_work() as uow:
        await store.upsert_account(uow.conn, account)
    return JSONResponse({"domain": account_domain, **body.model_dump()})


@router.get(
    "/v1/admin/accounts",
    tags=["admin"],
    responses=ok(rs.AccountList),
    summary="List registered accounts",
)
async def list_accounts(kit: KitDep, _admin: AccountsDep) -> JSONResponse:
    async with kit.connect() as conn:
        accounts = await store.list_accounts(conn)
    return JSONResponse({"items": [a.__dict__ for a in accounts]})


# ---------------------------------------------------------------------------------------
# Startup: bootstrap credentials for local runs


async def bootstrap(kit: ServiceKit) -> None:
    settings = runtime(kit).settings
    async with kit.unit_of_work() as uow:
        if settings.intake_bootstrap_api_key:
            key = settings.intake_bootstrap_api_key
            await store.insert_api_key(
                uow.conn,
                new_id(),
                "bootstrap",
                hash_api_key(key),
                display_prefix(key),
                ["activities", "inquiries", "scans"],
                None,
            )
        if settings.intake_bootstrap_form_key:
            origins = [
                o.strip() for o in settings.intake_bootstrap_form_origins.split(",") if o.strip()
            ]
            form = FormIn(
                name="Demo form",
                form_key=settings.intake_bootstrap_form_key,
                allowed_origins=origins,
                consent_text_version="v1",
            )
            await store.put_form(
                uow.conn,
                settings.intake_bootstrap_form_key,
                form.model_dump(),
                only_if_missing=True,
            )
