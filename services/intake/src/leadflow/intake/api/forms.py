"""Hosted web forms: a form's field map, CORS and origin checks, the posted form turned into
an inquiry, the thank-you and example pages.
"""

from __future__ import annotations

import html
import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.datastructures import FormData, UploadFile

from leadflow.events import KitDep, ServiceKit
from leadflow.events.access import public
from leadflow.events.envelope import new_id
from leadflow.events.errors import Problem
from leadflow.intake import domain, store
from leadflow.intake import responses as rs
from leadflow.intake.api.runtime import _hygiene_problem, _limit, _region, client_ip, runtime
from leadflow.intake.batching import Pending
from leadflow.intake.commands import IngestItem
from leadflow.intake.domain import FieldError, HygieneError, InquiryDraft
from leadflow.intake.responses import ok
from leadflow.intake.schemas import (
    FormIn,
)

log = logging.getLogger("leadflow.intake")
router = APIRouter()


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
        async with kit.connect() as tx:
            definition = await store.get_form(tx, form_key)
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
