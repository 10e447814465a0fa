"""Event → decision, one pure function per kind of event scoring consumes.

Intake's events change the profile or add an activity and re-score the lead; routing's move
it between marketing and sales (pause nurture, freeze the predictive snapshot, record an
outcome). ``decide`` is the ``ScoringBatch``'s decide: the state a lead's earlier events
left, the event, the batch's context in; the kernel's ``Decision`` out.
"""

from __future__ import annotations

from collections.abc import Callable

from leadflow.events.batch import Decision
from leadflow.events.catalogue.intake import (
    ActivityRecorded,
    ConsentChanged,
    DoNotContactChanged,
    HistoricalDealLost,
    HistoricalDealWon,
    InquiryReceived,
    LeadCaptured,
    LeadProfileUpdated,
)
from leadflow.events.catalogue.routing import (
    CustomerChurned,
    DealLost,
    DealWon,
    LeadAccepted,
    LeadAssigned,
    LeadContacted,
    LeadReassigned,
    LeadRecycled,
    LeadRejected,
    LeadSalesQualified,
    OpportunityOpened,
)
from leadflow.events.catalogue.scoring import ExpansionOpened, LeadReinstated
from leadflow.events.envelope import Envelope, EventPayload
from leadflow.scoring.decisions.draft import Draft, nurture_key, reevaluate_key
from leadflow.scoring.decisions.evaluate import (
    as_of,
    enrol,
    evaluate,
    exit_nurture,
    freeze,
    pause_nurture,
    record_outcome,
    score_now,
)
from leadflow.scoring.domain import (
    EnrolmentReason,
    LeadProfile,
    ScoreResult,
    profile_after_inquiry,
    profile_from_captured,
    profile_updated,
)
from leadflow.scoring.expansion import (
    CHURNED,
    CUSTOMER,
    colleague_opens,
    expansion_trigger,
    is_hand_raise,
    is_win_back,
)
from leadflow.scoring.facts import inquiry_activity, recorded_activity
from leadflow.scoring.predictive import scrub_snapshot
from leadflow.scoring.state import ERASED, HISTORY, MERGED, LeadRow, ScoredLead, ScoringContext

# A lead imported as history (``state.HISTORY``) is never open here: nothing qualifies,
# enrols or re-scores it (so routing, sla-monitor and notify never hear of it); its outcome
# makes it an example.

Rule = Callable[[Draft, Envelope, ScoringContext], None]


# -- intake -----------------------------------------------------------------------------------


def captured(d: Draft, event: Envelope, ctx: ScoringContext) -> None:
    payload = event.payload
    assert isinstance(payload, LeadCaptured)
    _key, act = inquiry_activity(
        payload.inquiry_id, event.occurred_at, payload.capture_method, payload.rating
    )
    d.state.add_activity(act)
    d.lead.set(profile=profile_from_captured(payload))
    d.lead.move(event.event_type)
    if payload.historical:
        d.lead.set(status=HISTORY)
        return
    colleague_interest(d, ctx)
    evaluate(d, ctx, event)


def colleague_interest(d: Draft, ctx: ScoringContext) -> None:
    """A new person at a customer account: their hand-raise opens an expansion cycle of the
    account (``expansion.opened`` with ``colleague``), qualified and routed as one."""
    lead = d.lead
    account_id = lead.profile.account_id
    if account_id is None or not colleague_opens(lead.status, lead.cycle, lead.expansions, True):
        return  # the cheap checks first: most leads are no colleague of a customer
    if not ctx.customers.get(account_id, frozenset()) - {lead.lead_id}:
        return
    lead.set(expansions=1)
    lead.move("expansion.opened")
    d.append(
        ExpansionOpened(
            trigger="hand_raise",
            account_id=account_id,
            account_domain=lead.profile.account_domain,
            expansion_number=1,
            colleague=True,
            model_version=ctx.model.version,
        )
    )


def inquiry(d: Draft, event: Envelope, ctx: ScoringContext) -> None:
    payload = event.payload
    assert isinstance(payload, InquiryReceived)
    _key, act = inquiry_activity(
        payload.inquiry_id, event.occurred_at, payload.capture_method, payload.rating
    )
    d.state.add_activity(act)
    d.lead.set(profile=profile_after_inquiry(d.lead.profile, payload))
    d.lead.move(event.event_type)
    if payload.historical:
        return  # history informs the profile; it qualifies nobody
    customer_interest(d, ctx, "inquiry")
    evaluate(d, ctx, event)


def profile_changed(d: Draft, event: Envelope, ctx: ScoringContext) -> None:
    assert isinstance(event.payload, LeadProfileUpdated)
    d.lead.set(profile=profile_updated(d.lead.profile, event.payload))
    evaluate(d, ctx, event)


def activity(d: Draft, event: Envelope, ctx: ScoringContext) -> None:
    payload = event.payload
    assert isinstance(payload, ActivityRecorded)
    _key, act = recorded_activity(payload, event.occurred_at, event.event_id)
    d.state.add_activity(act)
    customer_interest(d, ctx, payload.activity_type)
    evaluate(d, ctx, event)


def customer_interest(d: Draft, ctx: ScoringContext, activity_type: str | None) -> None:
    """A customer's new interest may open an expansion cycle (``expansion.opened``: the
    rules are ``leadflow.scoring.expansion``); a churned customer's hand-raise is a win-back
    (a new-business cycle). Either way the lead is open again, so the ``evaluate`` that
    follows qualifies it (a new cycle: a new snapshot, a new assignment) or lets it wait."""
    lead = d.lead
    if lead.status not in (CUSTOMER, CHURNED):
        return
    if is_win_back(lead.status, activity_type):
        # a churned customer's hand-raise activity makes the move a hand-raise makes:
        # churned → inquiry, a new-business cycle
        lead.move("inquiry.received")
        lead.set(snapshot=None, snapshot_at=None)
        return
    result: ScoreResult | None = None
    if activity_type is None or not is_hand_raise(activity_type):
        result = score_now(d.state, ctx)
    trigger = expansion_trigger(lead.status, activity_type, result.mql_ready if result else None)
    if trigger is None:
        return
    number = lead.expansions + 1
    lead.move("expansion.opened")
    lead.set(expansions=number, snapshot=None, snapshot_at=None)
    d.append(
        ExpansionOpened(
            trigger=trigger,
            account_id=lead.profile.account_id,
            account_domain=lead.profile.account_domain,
            expansion_number=number,
            engagement=result.engagement if result else None,
            model_version=ctx.model.version,
        )
    )


def consent_changed(d: Draft, event: Envelope, ctx: ScoringContext) -> None:
    """Marketing e-mail consent governs nurture e-mail only: an opt-out ends the nurture
    track, an opt-in lets a lead that left it for that reason be enrolled again. Neither
    touches qualification or sales (that is do-not-contact's business)."""
    payload = event.payload
    assert isinstance(payload, ConsentChanged)
    lead = d.lead
    lead.set(profile=lead.profile.model_copy(update={"marketing_opt_in": payload.marketing_opt_in}))
    if not payload.marketing_opt_in:
        exit_nurture(d, "opted_out")
    reopened = lead.nurture_status == "exited" and lead.nurture_reason == "opted_out"
    if payload.marketing_opt_in and reopened:
        lead.set(nurture_status="none")
    evaluate(d, ctx, event)


def do_not_contact_changed(d: Draft, event: Envelope, ctx: ScoringContext) -> None:
    """No contact at all: the built-in ``do_not_contact`` rule disqualifies the lead (routing
    takes it out of the rep's queue, sla-monitor stops its clocks). Lifted: a lead whose
    disqualification no longer holds is reinstated at ``inquiry`` and re-evaluated, so it
    qualifies (and is routed again) or nurtures like any other lead."""
    payload = event.payload
    assert isinstance(payload, DoNotContactChanged)
    lead = d.lead
    lead.set(profile=lead.profile.model_copy(update={"do_not_contact": payload.do_not_contact}))
    if not payload.do_not_contact and lead.disqualified and lead.status == "open":
        result = score_now(d.state, ctx)
        if result.disqualified_by is None:
            d.append(
                LeadReinstated(
                    reason="do_not_contact_lifted",
                    rule_id="do_not_contact",
                    model_version=ctx.model.version,
                )
            )
            lead.move("lead.reinstated")
            lead.set(disqualify_reason=None, snapshot=None, snapshot_at=None)
            if lead.nurture_status == "exited":
                lead.set(nurture_status="none")
            evaluate(d, ctx, event, result=result)
            return
    evaluate(d, ctx, event)


# -- routing ----------------------------------------------------------------------------------


def with_sales(d: Draft, event: Envelope, ctx: ScoringContext) -> None:
    """Assigned, accepted, worked: sales has the lead, so nurture pauses and the predictive
    snapshot is frozen (if qualification did not already freeze it)."""
    pause_nurture(d)
    d.lead.move(event.event_type)  # accepted, sales-qualified, opportunity: a stage each
    d.lead.set(with_sales=True)
    freeze(d, ctx, as_of(event, ctx))


def back_to_marketing(d: Draft, event: Envelope, ctx: ScoringContext) -> None:
    """Rejected or recycled: back to nurture, and engagement counts afresh from now, so the
    lead must show new interest before it qualifies again. A rejection is an outcome (with
    sales' reason); either way the next cycle gets a fresh snapshot."""
    payload = event.payload
    if isinstance(payload, LeadRejected):
        record_outcome(d, ctx, event, "rejected", payload.reason_code)
    reason: EnrolmentReason = "rejected" if isinstance(payload, LeadRejected) else "recycled"
    lead = d.lead
    lead.move(event.event_type)  # back to nurture
    lead.set(with_sales=False, engagement_since=event.occurred_at, snapshot=None,
             snapshot_at=None)  # fmt: skip
    if lead.status != "open":
        return
    if not lead.disqualified and lead.profile.marketing_opt_in is not False:
        enrol(d, ctx, reason)
    evaluate(d, ctx, event)


def closed(d: Draft, event: Envelope, ctx: ScoringContext) -> None:
    """Won or lost: the lead leaves scoring; the outcome is kept for predictive training
    (imported history too: its snapshot is the lead as the file described it). A win makes
    a customer whose engagement counts afresh from the win (what earned this deal does not
    open the next); a lost expansion leaves a customer a customer (the lifecycle's rule)."""
    payload = event.payload
    won = isinstance(payload, DealWon | HistoricalDealWon)
    reason = payload.reason_code if isinstance(payload, DealLost | HistoricalDealLost) else None
    outcome = "won" if won else "lost"
    record_outcome(d, ctx, event, outcome, reason)
    exit_nurture(d, "completed")
    d.cancel(reevaluate_key(d.lead.lead_id))
    lead = d.lead
    lead.move(event.event_type)  # won (a customer), lost, or a customer again (expansion)
    lead.set(outcome=outcome, with_sales=False, reeval_at=None)
    if won:
        lead.set(engagement_since=event.occurred_at)


def churned(d: Draft, event: Envelope, ctx: ScoringContext) -> None:
    """The CRM says the customer left: customer status ends, and with it any open expansion
    (nothing re-scores or qualifies it); a later hand-raise is a win-back."""
    lead = d.lead
    if lead.status != CUSTOMER and not (lead.status == "open" and lead.cycle == "expansion"):
        return
    exit_nurture(d, "completed")
    d.cancel(reevaluate_key(lead.lead_id))
    lead.move("customer.churned")
    lead.set(with_sales=False, reeval_at=None)


# -- the per-event handlers' decisions (their I/O around them: ``handlers``) ------------------


def merged_into(
    state: ScoredLead, ctx: ScoringContext, event: Envelope, merged: LeadRow | None
) -> Decision[ScoredLead]:
    """The survivor of a merge (its state read after the duplicate's activities moved to it)
    inherits where the duplicate already got to, one MQL and one owner, and is re-evaluated.
    ``merged``: the duplicate as it was (None: not known here)."""
    d = Draft.of(state)
    if merged is not None:
        if merged.qualified and not d.lead.qualified:
            d.lead.adopt(merged.lifecycle)
        d.lead.set(with_sales=d.lead.with_sales or merged.with_sales)
    evaluate(d, ctx, event)
    return d.decision()


def merged_away(state: ScoredLead) -> Decision[ScoredLead]:
    """The duplicate of a merge stops: its timers go, its nurture track ends."""
    d = Draft.of(state)
    lead = d.lead
    d.cancel(reevaluate_key(lead.lead_id))
    d.cancel(nurture_key(lead.lead_id))
    lead.set(status=MERGED, nurture_status="exited" if lead.track_id else "none",
             reeval_at=None, nurture_next_due_at=None)  # fmt: skip
    return d.decision()


def erased(state: ScoredLead) -> Decision[ScoredLead]:
    """The person asked to be forgotten: nurture ends, nothing re-scores the lead, its
    profile and activities go, its snapshot keeps counts only."""
    d = Draft.of(state)
    exit_nurture(d, "erased")
    d.cancel(reevaluate_key(d.lead.lead_id))
    d.state.activities = []
    d.lead.set(
        status=ERASED,
        profile=LeadProfile(),
        reeval_at=None,
        snapshot=scrub_snapshot(d.lead.snapshot),
    )
    return d.decision()


# Sales has the lead: nothing of these re-scores it (``ScoringContext.sales_only``).
SALES_FEEDBACK: tuple[type[EventPayload], ...] = (
    LeadAssigned,
    LeadReassigned,
    LeadAccepted,
    LeadContacted,
    LeadSalesQualified,
    OpportunityOpened,
)

RULES: dict[type[EventPayload], Rule] = {
    LeadCaptured: captured,
    InquiryReceived: inquiry,
    LeadProfileUpdated: profile_changed,
    ActivityRecorded: activity,
    ConsentChanged: consent_changed,
    DoNotContactChanged: do_not_contact_changed,
    **dict.fromkeys(SALES_FEEDBACK, with_sales),
    LeadRejected: back_to_marketing,
    LeadRecycled: back_to_marketing,
    DealWon: closed,
    DealLost: closed,
    HistoricalDealWon: closed,
    HistoricalDealLost: closed,
    CustomerChurned: churned,
}


def decide(state: ScoredLead | None, event: Envelope, ctx: ScoringContext) -> Decision[ScoredLead]:
    """What ``event`` comes to for its lead (loading creates every lead of a batch, so a
    lead's state is always there; an unseen one starts empty)."""
    if state is None:
        state = ScoredLead.new(event.lead_id)
    d = Draft.of(state)
    RULES[type(event.payload)](d, event, ctx)
    return d.decision()
