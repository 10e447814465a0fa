"""Marketing ops' pages: the scoring model editor (simulate and backtest a draft before
publishing it) and web forms (fields, allowed origins, and the embed snippet to paste).

The editor edits the model as the JSON scoring validates; a draft that is not JSON is
refused here naming the field, and everything else (rules, thresholds) is scoring's own
validation, shown as scoring words it.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from jinja2 import Template

from leadflow.console.web import session
from leadflow.console.web.pages import _form
from leadflow.console.web.render import Ctx, CtxDep, settings_of
from leadflow.events.access import Permission, public
from leadflow.events.documents import VERSION_FIELDS

marketing = APIRouter(include_in_schema=False, dependencies=[public()])

# A sales-ready inquiry, as a starting sample (marketing ops edit it freely).
SAMPLE_LEADS: list[dict[str, Any]] = [
    {
        "id": "sales-ready",
        "profile": {
            "title": "VP Marketing",
            "department": "Marketing",
            "company": "Northwind Bank",
            "industry": "Banking",
            "country": "US",
            "company_size": 1200,
            "answers": {
                "budget": "$80k approved",
                "authority": "Yes, I sign off",
                "timeframe": "This quarter",
            },
        },
        "activities": [{"activity_type": "inquiry"}],
    },
    {
        "id": "student",
        "profile": {"title": "Student", "company": "State University", "country": "US"},
        "activities": [{"activity_type": "inquiry"}],
    },
]


def _denied(ctx: Ctx, permission: Permission) -> HTMLResponse | None:
    if ctx.who.can(permission):
        return None
    return ctx.page(
        "message.html", status=403, title="Not for your role", message=f"needs {permission.value}"
    )


def _json_field(form: dict[str, str], name: str) -> tuple[Any, str]:
    try:
        return json.loads(form.get(name, "")), ""
    except ValueError as exc:
        return None, f"{name}: not valid JSON ({exc})"


def _fragment(ctx: Ctx, name: str, **values: Any) -> HTMLResponse:
    return ctx.page(name, **values)


# -- scoring model ------------------------------------------------------------------------


@marketing.get("/scoring", response_class=HTMLResponse)
async def scoring_page(ctx: CtxDep) -> HTMLResponse:
    if denied := _denied(ctx, Permission.SCORING_MODEL):
        return denied
    model = await ctx.api.get("scoring", "/v1/scoring/model")
    body = model.body if model.ok and isinstance(model.body, dict) else {}
    draft = {k: v for k, v in body.items() if k not in VERSION_FIELDS}
    return ctx.page(
        "scoring.html",
        version=body.get("version"),
        model_json=json.dumps(draft, indent=2),
        samples_json=json.dumps(SAMPLE_LEADS, indent=2),
        error="" if model.ok else model.problem,
    )


@marketing.post("/scoring/{step}", response_class=HTMLResponse)
async def scoring_step(ctx: CtxDep, step: str) -> HTMLResponse:
    if denied := _denied(ctx, Permission.SCORING_MODEL):
        return denied
    form = await _form(ctx.request)
    if not session.csrf_ok(ctx.request, form):
        return _fragment(ctx, "_scoring_result.html", error="The form expired: reload.")
    model, error = _json_field(form, "model")
    if error:
        return _fragment(ctx, "_scoring_result.html", error=error)
    if step == "simulate":
        leads, error = _json_field(form, "samples")
        if error:
            return _fragment(ctx, "_scoring_result.html", error=error)
        answer = await ctx.api.post(
            "scoring", "/v1/scoring/simulate", {"model": model, "leads": leads}
        )
        return _fragment(
            ctx,
            "_scoring_result.html",
            step=step,
            results=(answer.body or {}).get("results", []) if answer.ok else [],
            error=_problem(answer),
        )
    if step == "backtest":
        answer = await ctx.api.post("scoring", "/v1/scoring/backtest", {"model": model})
        return _fragment(
            ctx,
            "_scoring_result.html",
            step=step,
            backtest=answer.body if answer.ok else None,
            error=_problem(answer),
        )
    if step == "publish":
        answer = await ctx.api.call("scoring", "PUT", "/v1/scoring/model", json=model)
        return _fragment(
            ctx,
            "_scoring_result.html",
            step=step,
            published=answer.body if answer.ok else None,
            error=_problem(answer),
        )
    return _fragment(ctx, "_scoring_result.html", error=f"unknown step {step!r}")


def _problem(answer: Any) -> str:
    if answer.ok:
        return ""
    return answer.problem + (" — " + "; ".join(answer.fields) if answer.fields else "")


# -- forms --------------------------------------------------------------------------------

# The fields every snippet offers (intake's default field map reads these names), unless the
# form maps the same posted name elsewhere.
DEFAULT_INPUTS = (
    ("email", "E-mail", 'type="email" autocomplete="email"'),
    ("first_name", "First name", 'autocomplete="given-name"'),
    ("last_name", "Last name", 'autocomplete="family-name"'),
    ("company", "Company", 'autocomplete="organization"'),
    ("title", "Job title", ""),
    ("phone", "Phone", 'type="tel" autocomplete="tel"'),
)
SNIPPET = Template(
    """<form method="post" action="{{ action }}" accept-charset="utf-8">
{% for name, label, extra in inputs %}  <label>{{ label }} <input name="{{ name }}"\
{% if extra %} {{ extra | safe }}{% endif %}{% if name in required %} required{% endif %}></label>
{% endfor %}\
  <label style="position:absolute;left:-10000px" aria-hidden="true">Leave empty
    <input name="{{ honeypot }}" tabindex="-1" autocomplete="off"></label>
  <label><input type="checkbox" name="marketing_opt_in" value="yes"> Send me product news</label>
  <button type="submit">Send</button>
</form>""",
    autoescape=True,
)


def _label(target: str) -> str:
    """``contact.industry`` -> ``Industry``: what a mapped field is called on the page."""
    return target.rpartition(".")[2].replace("_", " ").capitalize()


def embed_snippet(intake_url: str, form: dict[str, Any]) -> str:
    """The HTML a site pastes: it posts straight to intake (no script), with the form's
    honeypot field hidden from people: the default fields and one per mapped field (its
    posted name, labelled by the lead field it feeds), required as the form requires."""
    mapped: dict[str, str] = dict(form.get("field_map") or {})
    inputs = [i for i in DEFAULT_INPUTS if i[0] not in mapped]
    inputs += [(name, _label(target), "") for name, target in mapped.items()]
    return SNIPPET.render(
        action=f"{intake_url.rstrip('/')}/v1/forms/{form['form_key']}",
        honeypot=form.get("honeypot_field") or "hp_website",
        inputs=inputs,
        required=set(form.get("required") or ["email"]),
    )


def parse_field_map(text: str) -> tuple[dict[str, str], list[str]]:
    """``posted_name = lead.field`` per line -> the field map, and the lines not in that
    shape (named back to the person; intake checks the lead fields themselves)."""
    mapping: dict[str, str] = {}
    bad: list[str] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        name, eq, target = line.partition("=")
        if not eq or not name.strip() or not target.strip():
            bad.append(line.strip())
            continue
        mapping[name.strip()] = target.strip()
    return mapping, bad


@marketing.get("/forms", response_class=HTMLResponse)
async def forms_page(ctx: CtxDep) -> HTMLResponse:
    if denied := _denied(ctx, Permission.FORMS):
        return denied
    return await _forms(ctx, created=None, error="")


async def _forms(ctx: Ctx, created: dict[str, Any] | None, error: str) -> HTMLResponse:
    listed = await ctx.api.get("intake", "/v1/admin/forms")
    raw = listed.body if listed.ok else []
    forms = raw.get("items", []) if isinstance(raw, dict) else raw
    intake = settings_of(ctx.kit).console_intake_url
    return ctx.page(
        "forms.html",
        forms=[{**f, "snippet": embed_snippet(intake, f)} for f in forms or []],
        created=created,
        error=error or ("" if listed.ok else listed.problem),
    )


@marketing.post("/forms", response_class=HTMLResponse)
async def create_form(ctx: CtxDep) -> HTMLResponse:
    if denied := _denied(ctx, Permission.FORMS):
        return denied
    form = await _form(ctx.request)
    if not session.csrf_ok(ctx.request, form):
        return await _forms(ctx, None, "The form expired: reload.")
    field_map, bad = parse_field_map(form.get("field_map", ""))
    if bad:
        return await _forms(
            ctx,
            None,
            "The form was not created: field_map: not 'posted_name = lead.field': "
            + "; ".join(bad),
        )
    required = form.get("required", "").replace(",", " ").split()
    body: dict[str, Any] = {
        "name": form.get("name", "").strip(),
        "allowed_origins": [o.strip() for o in form.get("allowed_origins", "").split() if o],
        "campaign": form.get("campaign", "").strip() or None,
        "thank_you_url": form.get("thank_you_url", "").strip() or None,
        "field_map": field_map,
        "required": required or ["email"],
    }
    answer = await ctx.api.post("intake", "/v1/admin/forms", body)
    if not answer.ok:
        return await _forms(ctx, None, f"The form was not created: {_problem(answer)}")
    return await _forms(ctx, answer.body, "")


# -- nurture tracks -----------------------------------------------------------------------


async def _tracks(ctx: Ctx, flash: str = "", error: str = "") -> HTMLResponse:
    listed = await ctx.api.get("scoring", "/v1/scoring/tracks", include_inactive="true")
    tracks = (listed.body or {}).get("tracks", []) if listed.ok else []
    return ctx.page(
        "tracks.html",
        tracks=[
            {**t, "json": json.dumps({k: v for k, v in t.items() if k != "version"}, indent=2)}
            for t in tracks
        ],
        flash=flash,
        error=error or ("" if listed.ok else _problem(listed)),
    )


@marketing.get("/tracks", response_class=HTMLResponse)
async def tracks_page(ctx: CtxDep) -> HTMLResponse:
    if denied := _denied(ctx, Permission.NURTURE):
        return denied
    return await _tracks(ctx)


@marketing.post("/tracks", response_class=HTMLResponse)
async def save_track(ctx: CtxDep) -> HTMLResponse:
    """Create or replace one track from its JSON (scoring validates it)."""
    if denied := _denied(ctx, Permission.NURTURE):
        return denied
    form = await _form(ctx.request)
    if not session.csrf_ok(ctx.request, form):
        return await _tracks(ctx, error="The form expired: reload.")
    track, error = _json_field(form, "track")
    if error or not isinstance(track, dict) or not str(track.get("id") or "").strip():
        return await _tracks(ctx, error=error or 'track: needs an "id"')
    track_id = str(track["id"]).strip()
    answer = await ctx.api.call("scoring", "PUT", f"/v1/scoring/tracks/{track_id}", json=track)
    if not answer.ok:
        return await _tracks(ctx, error=f"Not saved: {_problem(answer)}")
    return await _tracks(ctx, flash=f"Track {track_id} saved (version {answer.body['version']}).")


__all__ = ["embed_snippet", "marketing"]
