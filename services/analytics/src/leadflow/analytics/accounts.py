"""Accounts and buying groups (issue 30): pure rules, no I/O.

B2B buying is done by groups: five people of one company who buy are one win, not five
leads. Intake groups leads by company (a registered account, or the company domain; free
mail never forms an account) and says so on ``lead.captured`` / ``lead.profile_updated``
(``account``). Analytics folds each lead's events into a :class:`Person`, infers the
person's role in the buying group, and rolls people up into an :class:`AccountView` and the
account waterfall (engaged accounts → qualified accounts → opportunity → won).

Roles are inferred, never entered, so they are a pure function of what a person told us
(title, seniority, answers): see :func:`infer_role` for the order the rules apply in.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from leadflow.events.lifecycle import Cycle, LeadLifecycle, Stage, TransitionRefused


class Role(StrEnum):
    DECISION_MAKER = "decision_maker"
    CHAMPION = "champion"
    INFLUENCER = "influencer"
    USER = "user"


# Seniority from a title, the same coarse levels scoring derives (scoring's seniority_of);
# repeated here because analytics never imports another service.
_SENIORITY: tuple[tuple[str, str], ...] = (
    ("student", r"\b(student|intern|trainee|graduate)\b"),
    ("vp", r"\b(vp|svp|evp|vice president)\b"),
    ("c_level", r"\b(chief|ceo|cto|cfo|coo|cmo|cio|ciso|founder|co-founder|owner|president)\b"),
    ("director", r"\b(director|head of|head)\b"),
    ("manager", r"\b(manager|lead|supervisor|principal)\b"),
    ("professional", r"\b(professional|engineer|analyst|specialist|consultant|architect)\b"),
)
# Answers that claim buying authority (scoring's built-in "decision authority" words).
_AUTHORITY = ("yes", "decision", "sign", "budget holder", "owner")
# Answers that show someone driving the purchase inside the company.
_DRIVING = ("compelling_event", "timeframe", "budget")
_NEGATIVE = re.compile(r"^\s*(no|none|n/?a|not|unknown|-)\b", re.IGNORECASE)


def seniority_of(title: str | None) -> str | None:
    if not title:
        return None
    lowered = title.lower()
    for level, pattern in _SENIORITY:
        if re.search(pattern, lowered):
            return level
    return "individual"


def _stated(value: str | None) -> bool:
    return bool(value and value.strip() and not _NEGATIVE.match(value))


def infer_role(
    title: str | None, seniority: str | None, answers: Mapping[str, str]
) -> tuple[Role, str]:
    """The person's role in the buying group and why, first rule that holds:

    1. **decision maker**: an executive (C-level, VP) or someone who claims the authority
       to buy (``answers.authority`` says yes / sign / budget holder ...);
    2. **champion**: a director or manager who is driving a purchase (stated a compelling
       event, a timeframe or a budget);
    3. **influencer**: a director or manager otherwise, or a professional (architect,
       engineer, analyst, consultant) who evaluates;
    4. **user**: everyone else (individual contributors, unknown titles).
    """
    level = seniority or seniority_of(title)
    authority = (answers.get("authority") or "").lower()
    if level in ("c_level", "vp"):
        return Role.DECISION_MAKER, f"seniority {level}"
    if _stated(authority) and any(word in authority for word in _AUTHORITY):
        return Role.DECISION_MAKER, "claims buying authority"
    driving = [name for name in _DRIVING if _stated(answers.get(name))]
    if level in ("director", "manager"):
        if driving:
            return Role.CHAMPION, f"seniority {level}, stated {', '.join(driving)}"
        return Role.INFLUENCER, f"seniority {level}"
    if level == "professional":
        return Role.INFLUENCER, "evaluates (professional title)"
    return Role.USER, f"seniority {level or 'unknown'}"


@dataclass
class Person:
    """One lead of an account, folded from its events (oldest first)."""

    lead_id: str
    account_id: str | None = None
    account_domain: str | None = None
    account_name: str | None = None
    account_registered: bool = False
    title: str | None = None
    seniority: str | None = None
    answers: dict[str, str] = field(default_factory=dict)
    lifecycle: LeadLifecycle = field(default_factory=LeadLifecycle)
    fit: float | None = None
    engagement: float | None = None
    grade: str | None = None
    activities: int = 0
    hand_raises: int = 0
    qualified: bool = False
    account_qualified_at: datetime | None = None  # scoring's account.qualified (an MQA)
    rep_id: str | None = None
    owner_rep_id: str | None = None  # the rep routing assigned as the account's owner
    open_opportunities: list[dict[str, Any]] = field(default_factory=list)
    won: list[tuple[Decimal, str]] = field(default_factory=list)  # every cycle's wins
    expansion_won: list[tuple[Decimal, str]] = field(default_factory=list)  # expansions' only
    last_activity_at: datetime | None = None

    @property
    def stage(self) -> str | None:
        return self.lifecycle.stage.value if self.lifecycle.stage else None

    @property
    def engaged(self) -> bool:
        return self.hand_raises > 0 or self.activities > 0


def _money(value: Any) -> Decimal:
    return Decimal(str(value))


def fold_person(lead_id: str, events: Iterable[tuple[str, datetime, Mapping[str, Any]]]) -> Person:
    """A person from their events ``(event_type, occurred_at, payload)`` in order.

    A move the lifecycle refuses (events of several producers can arrive out of causal
    order) leaves the stage as it was: analytics reports, it does not judge.
    """
    p = Person(lead_id)
    for event_type, at, payload in events:
        account = payload.get("account")
        if event_type in ("lead.captured", "lead.profile_updated"):
            contact = payload.get("contact") or {}
            if contact.get("title"):
                p.title = contact["title"]
                p.seniority = None
            if isinstance(account, Mapping):
                p.account_id = account.get("account_id")
                p.account_domain = account.get("domain")
                p.account_name = account.get("name") or contact.get("company")
                p.account_registered = bool(account.get("registered", False))
        if event_type in ("lead.captured", "inquiry.received", "lead.profile_updated"):
            for name, value in (payload.get("answers") or {}).items():
                if isinstance(value, str) and value.strip():
                    p.answers[name] = value
        if event_type in ("lead.captured", "inquiry.received"):
            p.hand_raises += 1
            p.last_activity_at = at
        elif event_type == "activity.recorded":
            p.activities += 1
            p.last_activity_at = at
        elif event_type == "lead.scored":
            p.fit, p.engagement = payload.get("fit"), payload.get("engagement")
            p.grade = payload.get("grade")
        elif event_type == "lead.qualified":
            p.qualified = True
            snapshot = payload.get("lead") or {}
            p.seniority = snapshot.get("seniority") or p.seniority
            p.title = p.title or snapshot.get("title")
        elif event_type in ("lead.assigned", "lead.reassigned"):
            p.rep_id = payload.get("rep_id") or p.rep_id
            if payload.get("method") == "account_owner":
                p.owner_rep_id = payload.get("rep_id")
        elif event_type == "account.qualified":
            p.account_qualified_at = at
        elif event_type == "account.routed":
            p.owner_rep_id = payload.get("rep_id") or p.owner_rep_id
        elif event_type == "opportunity.opened":
            p.open_opportunities = [
                {
                    "lead_id": lead_id,
                    "amount": str(_money(payload.get("amount", 0))),
                    "currency": payload.get("currency") or "USD",
                    "opened_at": at.isoformat(),
                }
            ]
        elif event_type == "deal.won":
            amount = (_money(payload.get("amount", 0)), payload.get("currency") or "USD")
            if p.lifecycle.cycle is Cycle.EXPANSION:
                p.expansion_won.append(amount)
            p.won.append(amount)
            p.open_opportunities = []
        elif event_type in ("deal.lost", "lead.recycled", "lead.disqualified"):
            p.open_opportunities = []
        try:
            p.lifecycle = p.lifecycle.apply(event_type)
        except TransitionRefused:
            pass
    return p


def _per_currency(amounts: Iterable[tuple[Decimal, str]]) -> list[dict[str, Any]]:
    totals: dict[str, Decimal] = {}
    for amount, currency in amounts:
        totals[currency] = totals.get(currency, Decimal(0)) + amount
    return [{"currency": c, "amount": str(totals[c])} for c in sorted(totals)]


def customer_status(people: Sequence[Person]) -> str:
    """``customer`` while any person of the account is one (won, ``customer``, or in an
    expansion cycle: the kernel's ``LeadLifecycle.is_customer``); ``churned`` when the CRM
    reported churn and nobody is a customer any more; else ``prospect``."""
    if any(p.lifecycle.is_customer for p in people):
        return "customer"
    if any(p.lifecycle.stage is Stage.CHURNED for p in people):
        return "churned"
    return "prospect"


def account_view(key: str, people: Sequence[Person]) -> dict[str, Any]:
    """The account page: its people with roles, stages and engagement, open opportunities,
    owner and customer status. ``people`` are the account's leads (any order)."""
    ordered = sorted(people, key=lambda p: (-(p.engagement or 0.0), p.lead_id))
    first = ordered[0] if ordered else Person("")
    owners = [p.owner_rep_id for p in people if p.owner_rep_id]
    mqa = [p.account_qualified_at for p in people if p.account_qualified_at]
    rows = []
    for p in ordered:
        role, why = infer_role(p.title, p.seniority, p.answers)
        rows.append(
            {
                "lead_id": p.lead_id,
                "title": p.title,
                "seniority": p.seniority or seniority_of(p.title),
                "role": role.value,
                "role_reason": why,
                "stage": p.stage,
                "cycle": p.lifecycle.cycle.value,
                "customer": p.lifecycle.is_customer,
                "fit": p.fit,
                "engagement": p.engagement,
                "grade": p.grade,
                "hand_raises": p.hand_raises,
                "activities": p.activities,
                "rep_id": p.rep_id,
                "last_activity_at": p.last_activity_at.isoformat() if p.last_activity_at else None,
            }
        )
    roles: dict[str, int] = {r.value: 0 for r in Role}
    for row in rows:
        roles[str(row["role"])] += 1
    return {
        "key": key,
        "account_id": first.account_id,
        "domain": first.account_domain,
        "name": next((p.account_name for p in ordered if p.account_name), None),
        "registered": any(p.account_registered for p in people),
        "owner_rep_id": owners[-1] if owners else None,
        "marketing_qualified_at": min(mqa).isoformat() if mqa else None,
        "customer_status": customer_status(people),
        "people": rows,
        "roles": roles,
        "open_opportunities": [o for p in ordered for o in p.open_opportunities],
        "won_revenue": _per_currency(a for p in people for a in p.won),
        "expansion_revenue": _per_currency(a for p in people for a in p.expansion_won),
        "open_expansions": sum(
            1 for p in people if p.lifecycle.cycle is Cycle.EXPANSION and p.lifecycle.is_open
        ),
    }


ACCOUNT_STAGES = ("engaged", "qualified", "opportunity", "won")


@dataclass(frozen=True)
class AccountReach:
    """How far one lead took its account: the facts the account waterfall counts."""

    account_id: str
    engaged: bool
    qualified: bool
    opportunity: bool
    won: bool


def account_waterfall(leads: Iterable[AccountReach]) -> list[dict[str, Any]]:
    """Engaged accounts → qualified accounts → opportunity → won, each account counted once
    at every stage one of its people reached (qualified: a person became an MQL or the
    account an MQA); ``conversion`` is from the stage before."""
    reached: dict[str, set[str]] = {}
    for lead in leads:
        stages = reached.setdefault(lead.account_id, set())
        for name in ACCOUNT_STAGES:
            if getattr(lead, name):
                stages.add(name)
    rows: list[dict[str, Any]] = []
    previous: int | None = None
    for name in ACCOUNT_STAGES:
        count = sum(1 for stages in reached.values() if name in stages)
        conversion = round(count / previous, 4) if previous else None
        rows.append({"stage": name, "count": count, "conversion": conversion})
        previous = count
    return rows


Deal = tuple[str, datetime, Decimal, str, str]


def revenue_split(deals: Iterable[Deal]) -> list[dict[str, Any]]:
    """Won revenue per currency, new business against expansion.

    ``deals`` are ``(account, won_at, amount, currency, cycle)``. A deal won in an
    expansion cycle (``deal.won``'s ``cycle``, issue 30) is expansion; so is every deal an
    account wins once it is a customer (after its first win: a colleague's deal, or a win
    recorded before cycles existed). The rest is new business. Money is never summed across
    currencies: one row per currency.
    """
    customers: set[str] = set()
    totals: dict[str, dict[str, Any]] = {}
    for account, _at, amount, currency, cycle in sorted(deals, key=lambda d: d[1]):
        row = totals.setdefault(
            currency,
            {
                "currency": currency,
                "new_business": Decimal(0),
                "expansion": Decimal(0),
                "new_business_deals": 0,
                "expansion_deals": 0,
            },
        )
        kind = "expansion" if account in customers or cycle == "expansion" else "new_business"
        row[kind] += amount
        row[f"{kind}_deals"] += 1
        customers.add(account)
    return [
        {**row, "new_business": str(row["new_business"]), "expansion": str(row["expansion"])}
        for _, row in sorted(totals.items())
    ]
