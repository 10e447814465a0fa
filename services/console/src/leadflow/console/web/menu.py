"""The console's pure page rules: which pages a person is offered, which hand-off actions a
lead's stage allows, how an SLA deadline reads.

Nothing here decides what a person may *do*: each service enforces its own permissions
(the kernel's table, :mod:`leadflow.events.access`) on the token the console forwards.
The menu only keeps pages a role could not use out of sight, from that same table, so the
two never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from leadflow.events.access import Permission, Principal


@dataclass(frozen=True)
class Page:
    path: str
    label: str
    permission: Permission
    needs_rep_id: bool = False  # a page of one rep's own work (the queue)


PAGES: tuple[Page, ...] = (
    Page("/queue", "My queue", Permission.HANDOFF_READ, needs_rep_id=True),
    Page("/leads", "Leads", Permission.LEADS_READ),
    Page("/dashboard", "Dashboard", Permission.REPORTS),
    Page("/process", "Process", Permission.REPORTS),
    Page("/scoring", "Scoring model", Permission.SCORING_MODEL),
    Page("/tracks", "Nurture", Permission.NURTURE),
    Page("/forms", "Forms", Permission.FORMS),
    Page("/imports", "Imports", Permission.IMPORTS),
    Page("/costs", "Campaign costs", Permission.CAMPAIGN_COSTS),
    Page("/api-keys", "API keys", Permission.API_KEYS),
    Page("/routing", "Routing", Permission.ROUTING_CONFIG),
    Page("/sla", "SLA", Permission.SLA_READ),
    Page("/users", "Users", Permission.USERS),
    Page("/api-docs", "API docs", Permission.AUTHENTICATED),
)


def pages_for(who: Principal) -> list[Page]:
    """The pages offered to ``who``, in menu order."""
    return [
        p for p in PAGES if who.can(p.permission) and (not p.needs_rep_id or who.rep_id is not None)
    ]


def may_open(who: Principal, path: str) -> bool:
    return any(p.path == path for p in pages_for(who))


def home_of(who: Principal) -> str:
    """Where signing in lands: the first page offered (the API docs when nothing else is)."""
    offered = pages_for(who)
    return offered[0].path if offered else "/api-docs"


def role_label(who: Principal) -> str:
    return ", ".join(sorted(r.value.replace("_", " ") for r in who.roles)) or "no role"


# -- the rep's hand-off actions --------------------------------------------------------

# The lifecycle's next steps from each stage, as the buttons a rep sees (routing refuses
# anything else with a 409; offering only these keeps the row short and honest).
ACTIONS_BY_STAGE: dict[str, tuple[str, ...]] = {
    "mql": ("accept", "reject", "hold"),
    "sal": ("contacted", "qualify", "reject", "recycle", "hold"),
    "sql": ("contacted", "opportunity", "lost", "recycle", "hold"),
    "opportunity": ("contacted", "won", "lost", "hold"),
    "on_hold": ("accept", "contacted", "recycle"),
}

ACTION_LABELS: dict[str, str] = {
    "accept": "Accept",
    "contacted": "Contacted",
    "qualify": "Qualify",
    "opportunity": "Open opportunity",
    "won": "Won",
    "lost": "Lost",
    "reject": "Reject",
    "recycle": "Recycle",
    "hold": "Hold",
    "claim": "Claim",
}

# Which actions carry a reason code, and under which routing reason-code list.
REASON_ACTIONS = {"reject": "reject", "recycle": "recycle", "lost": "lost"}


def actions_for(stage: str | None) -> tuple[str, ...]:
    return ACTIONS_BY_STAGE.get(stage or "", ())


def action_body(action: str, form: dict[str, str]) -> dict[str, object]:
    """The JSON routing expects for ``action`` from the row's form fields (empty fields are
    left out, so routing's own validation names what is missing)."""
    body: dict[str, object] = {}
    note = form.get("note", "").strip()
    if action in ("accept", "contacted", "qualify", "reject", "recycle", "lost") and note:
        body["note"] = note
    if action in REASON_ACTIONS:
        body["reason_code"] = form.get("reason_code", "").strip()
    if action in ("opportunity", "won"):
        body["amount"] = form.get("amount", "").strip()
        currency = form.get("currency", "").strip().upper()
        if currency or action == "opportunity":
            body["currency"] = currency
    if action == "hold":
        body["reason"] = form.get("reason", "").strip()
    return body


# -- SLA clocks --------------------------------------------------------------------------


def countdown(due_at: datetime, now: datetime) -> tuple[str, bool]:
    """``("12m 05s left", False)`` or ``("breached 3m 10s ago", True)``: the server's first
    rendering; the page's script keeps it ticking."""
    seconds = int((due_at - now).total_seconds())
    breached = seconds < 0
    text = _span(abs(seconds))
    return (f"breached {text} ago", True) if breached else (f"{text} left", False)


def _span(seconds: int) -> str:
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s"
