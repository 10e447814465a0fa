"""Events produced by ``services/routing`` on ``leadflow.routing``: assignment and sales outcomes."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from leadflow.events.catalogue.common import LeadSnapshot
from leadflow.events.envelope import EventPayload

AssigneeKind = Literal["rep", "queue"]


# A rep's note is free text about a person: sealed in routing's log, erased with the lead.
NOTE: frozenset[str] = frozenset({"note"})


class _Value(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class RuleMiss(_Value):
    """Why a rule earlier in the list did not take the lead."""

    rule_id: str
    reason: str


class RepSkip(_Value):
    """A rep the decision passed over, and why (paused, out of office, at cap...)."""

    rep_id: str
    reason: str


class AccountRouted(EventPayload):
    """A marketing-qualified account (``account.qualified``) was sent to its owner, the rep
    set with ``PUT /v1/routing/accounts/{key}`` (issue 30); ``rep_id`` is None when nobody
    owns the account (sales ops should give it one). On the tipping lead's stream."""

    event_type: ClassVar[str] = "account.routed"
    producer: ClassVar[str] = "routing"
    summary: ClassVar[str] = "A marketing-qualified account was sent to its owner."

    account_id: str
    account_domain: str | None = None
    rep_id: str | None = None
    reason: str = ""


class LeadAssigned(EventPayload):
    event_type: ClassVar[str] = "lead.assigned"
    producer: ClassVar[str] = "routing"
    summary: ClassVar[str] = "The MQL was assigned to a rep or a queue."

    assignee_kind: AssigneeKind
    rep_id: str | None = None
    team_id: str | None = None
    queue_id: str | None = None
    rule_id: str | None = None
    rules_version: int | None = None
    method: str = ""  # account_owner, direct, round_robin, least_loaded, fallback
    reason: str = ""
    cycle: Literal["new_business", "expansion"] = "new_business"
    skipped: list[RuleMiss] = []
    lead: LeadSnapshot = LeadSnapshot()
    skipped_reps: list[RepSkip] = []
    # Who to tell (notify): the rep's and the team manager's addresses from the roster.
    rep_name: str | None = None
    rep_email: str | None = None
    manager_email: str | None = None


class LeadReassigned(EventPayload):
    event_type: ClassVar[str] = "lead.reassigned"
    producer: ClassVar[str] = "routing"
    summary: ClassVar[str] = "The lead moved to another rep or queue (e.g. after an SLA breach)."

    from_rep_id: str | None = None
    assignee_kind: AssigneeKind
    rep_id: str | None = None
    team_id: str | None = None
    queue_id: str | None = None
    reason: str
    sla_id: str | None = None
    lead: LeadSnapshot = LeadSnapshot()
    rule_id: str | None = None
    method: str = ""
    skipped_reps: list[RepSkip] = []
    rep_name: str | None = None
    rep_email: str | None = None
    manager_email: str | None = None


class LeadAccepted(EventPayload):
    event_type: ClassVar[str] = "lead.accepted"
    producer: ClassVar[str] = "routing"
    summary: ClassVar[str] = "A rep accepted the lead (SAL)."

    rep_id: str


class LeadRejected(EventPayload):
    event_type: ClassVar[str] = "lead.rejected"
    producer: ClassVar[str] = "routing"
    personal_fields: ClassVar[frozenset[str]] = NOTE  # what the rep wrote about the person
    summary: ClassVar[str] = "A rep rejected the lead back to marketing, with a reason."

    rep_id: str | None = None
    reason_code: str
    note: str | None = None


class LeadRecycled(EventPayload):
    event_type: ClassVar[str] = "lead.recycled"
    producer: ClassVar[str] = "routing"
    personal_fields: ClassVar[frozenset[str]] = NOTE  # what the rep wrote about the person
    summary: ClassVar[str] = "Sales handed the lead back to nurture."

    rep_id: str | None = None
    reason_code: str
    note: str | None = None


class LeadContacted(EventPayload):
    event_type: ClassVar[str] = "lead.contacted"
    producer: ClassVar[str] = "routing"
    personal_fields: ClassVar[frozenset[str]] = NOTE  # what the rep wrote about the person
    summary: ClassVar[str] = "The rep made first (or further) contact."

    rep_id: str | None = None
    channel: str | None = None
    note: str | None = None


class LeadSalesQualified(EventPayload):
    event_type: ClassVar[str] = "lead.sales_qualified"
    producer: ClassVar[str] = "routing"
    personal_fields: ClassVar[frozenset[str]] = NOTE  # what the rep wrote about the person
    summary: ClassVar[str] = "Sales confirmed need, authority, budget and timeframe (SQL)."

    rep_id: str | None = None
    need: bool = True
    authority: bool = True
    budget: bool = True
    timeframe: bool = True
    note: str | None = None


class OpportunityOpened(EventPayload):
    event_type: ClassVar[str] = "opportunity.opened"
    producer: ClassVar[str] = "routing"
    summary: ClassVar[str] = "A deal with an amount was opened."

    opportunity_id: str
    amount: Decimal
    currency: str
    expected_close: datetime | None = None
    rep_id: str | None = None


class DealWon(EventPayload):
    event_type: ClassVar[str] = "deal.won"
    producer: ClassVar[str] = "routing"
    summary: ClassVar[str] = "The deal was won."

    opportunity_id: str | None = None
    amount: Decimal  # in ``currency``, the opportunity's
    currency: str = "USD"
    rep_id: str | None = None
    # Set when the rep entered the amount in another currency and converted it explicitly:
    # what they entered, and the rate (``amount`` = original_amount x exchange_rate).
    original_amount: Decimal | None = None
    original_currency: str | None = None
    exchange_rate: Decimal | None = None
    # The buying cycle the deal closes: ``expansion`` when a customer bought again.
    cycle: Literal["new_business", "expansion"] = "new_business"


class CustomerBecame(EventPayload):
    """The won person is a customer (issue 30): recorded by routing in the same transaction
    as ``deal.won`` (the rep's API or a CRM outcome) and moving the lifecycle ``won ->
    customer``; the account (``account_id``) is a customer account from then on."""

    event_type: ClassVar[str] = "customer.became"
    producer: ClassVar[str] = "routing"
    summary: ClassVar[str] = "The won person (and their account) became a customer."

    cycle: Literal["new_business", "expansion"] = "new_business"
    account_id: str | None = None
    rep_id: str | None = None


class CustomerChurned(EventPayload):
    """The CRM says the customer left (``POST /v1/routing/crm/events`` outcome ``churned``):
    customer status ends (the lifecycle moves the lead to ``churned``); an open expansion
    cycle ends with it. A later hand-raise is a win-back (new business)."""

    event_type: ClassVar[str] = "customer.churned"
    producer: ClassVar[str] = "routing"
    summary: ClassVar[str] = "The customer churned (from the CRM); customer status ends."

    reason_code: str | None = None
    account_id: str | None = None
    source_system: str | None = None


class DealLost(EventPayload):
    event_type: ClassVar[str] = "deal.lost"
    producer: ClassVar[str] = "routing"
    personal_fields: ClassVar[frozenset[str]] = NOTE  # what the rep wrote about the person
    summary: ClassVar[str] = "The deal was lost, with a reason."

    opportunity_id: str | None = None
    reason_code: str
    note: str | None = None
    rep_id: str | None = None


class LeadPutOnHold(EventPayload):
    event_type: ClassVar[str] = "lead.put_on_hold"
    producer: ClassVar[str] = "routing"
    summary: ClassVar[str] = "The lead is parked (e.g. budget next quarter)."
    # The reason is what the rep typed: personal, sealed in routing's log, gone on erasure.
    personal_fields: ClassVar[frozenset[str]] = frozenset({"reason"})
    erased_placeholders: ClassVar[Mapping[str, Any]] = {"reason": ""}

    reason: str
    until: datetime | None = None
    rep_id: str | None = None


class RoutingRulesPublished(EventPayload):
    """A routing rule set version (stream: ``stream_id("routing-rules")``)."""

    event_type: ClassVar[str] = "routing.rules_published"
    producer: ClassVar[str] = "routing"
    summary: ClassVar[str] = "Sales ops published a new routing rule set version."

    rules_version: int
    rules: list[dict[str, Any]]
    published_by: str | None = None
