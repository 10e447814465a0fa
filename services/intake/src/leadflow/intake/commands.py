"""Intake's commands: turn cleaned input into decisions (``domain``), rows (``store``) and
events (``uow.append``), all in the caller's transaction.

Every channel (API inquiry, web form, badge scan, import row) goes through ``ingest``, which
handles a whole batch with a fixed number of round trips: one identity-lock statement, one
read (candidates and accounts), one write (leads, email aliases, anonymous links, pending-
activity claim, keys), and the kernel's multi-row event append.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from leadflow.events import UnitOfWork
from leadflow.events.catalogue.intake import (
    ActivityRecorded,
    CaptureMethod,
    ConsentChanged,
    ConsentRecord,
    DoNotContactChanged,
    InquiryReceived,
    LeadCaptured,
    LeadErased,
    LeadProfileUpdated,
    LeadsMerged,
    PropertyValue,
)
from leadflow.events.envelope import new_id
from leadflow.intake import crypto, domain, store
from leadflow.intake.domain import CleanInquiry, IdentityDecision
from leadflow.intake.store import LeadState


@dataclass(frozen=True)
class IngestItem:
    inquiry: CleanInquiry
    capture_method: CaptureMethod
    inquiry_id: uuid.UUID
    anonymous_id: str | None = None
    historical: bool = False  # imported history: its events start nothing downstream


@dataclass(frozen=True)
class IngestResult:
    lead_id: uuid.UUID
    inquiry_id: uuid.UUID
    matched: bool
    match_reason: str | None
    new_lead: bool

    def answer(self) -> dict[str, Any]:
        """The body of the 202 a single inquiry gets (and its replays)."""
        return {
            "lead_id": str(self.lead_id),
            "inquiry_id": str(self.inquiry_id),
            "matched": self.matched,
            "match_reason": self.match_reason,
        }


def _initial_times(contact: domain.Contact, at: datetime) -> dict[str, datetime]:
    return {k: at for k, v in contact.model_dump().items() if v is not None}


async def ingest(
    uow: UnitOfWork,
    items: Sequence[IngestItem],
    *,
    identities_locked: bool = False,
    idempotency: Sequence[tuple[str, str] | None] = (),
) -> list[IngestResult]:
    """Resolve, merge and record a batch of inquiries (see the module docstring).

    ``identities_locked``: the caller already took ``identity_keys(items)``'s locks in this
    transaction. ``idempotency``: per item, the claimed (scope, key) whose stored answer is
    written with the batch (the answer is ``IngestResult.answer()``).
    """
    if idempotency and len(idempotency) != len(items):
        raise ValueError("idempotency must have one entry per item")
    if not items:
        return []
    tx = uow.tx
    now = uow.clock.now()
    contacts = [i.inquiry.clean for i in items]
    if not identities_locked:
        await store.lock_identities(tx, identity_keys(items))
    candidates, accounts = await store.fetch_candidates_and_accounts(
        tx,
        emails=[c.contact.email for c in contacts if c.contact.email],
        phones=[c.contact.phone for c in contacts if c.contact.phone],
        domains=[c.company_domain for c in contacts if c.company_domain],
        names=[
            n for c in contacts if (n := domain.name_key(c.contact.first_name, c.contact.last_name))
        ],
        account_domains={
            d
            for c in contacts
            if c.company_domain
            for d in domain.account_domains(c.company_domain)
        },
    )
    states: dict[uuid.UUID, LeadState] = {s.lead_id: s for s in candidates}
    index = _IdentityIndex()
    for state in candidates:
        index.add(state)

    results: list[IngestResult] = []
    events: list[tuple[uuid.UUID, list[Any], datetime]] = []
    identified_emails: dict[str, uuid.UUID] = {}
    identified_anon: dict[str, uuid.UUID] = {}
    created: set[uuid.UUID] = set()  # leads born in this batch: their streams are empty

    for item in items:
        inquiry = item.inquiry
        clean = inquiry.clean
        at = inquiry.occurred_at or now
        consent = inquiry.consent
        if consent is not None and consent.given_at is None:
            # When the answer was given: a merge weighs two answers by it. (Only the record is
            # copied; rebuilding the inquiry and the item around it cost more than the copy.)
            consent = consent.model_copy(update={"given_at": at})
        live = [states[i].known() for i in index.candidates(clean) if states[i].merged_into is None]
        decision: IdentityDecision = domain.resolve_identity(clean, live)
        account = domain.match_account(clean, accounts)

        if decision.kind == "same" and decision.lead_id is not None:
            lead = states[decision.lead_id]
            payloads = _repeat_inquiry(lead, item, account, at, consent)
            events.append((lead.lead_id, payloads, at))
            results.append(IngestResult(lead.lead_id, item.inquiry_id, True, "same_email", False))
            target = lead
        else:
            new_lead = LeadState(
                lead_id=new_id(),
                contact=clean.contact,
                field_times=_initial_times(clean.contact, at),
                consent=consent,
                account=account,
                flags=clean.flags,
                company_domain=clean.company_domain,
                emails={clean.contact.email} if clean.contact.email else set(),
                new_emails={clean.contact.email} if clean.contact.email else set(),
                created_at=now,
                dirty=True,
            )
            captured = LeadCaptured(
                inquiry_id=item.inquiry_id,
                capture_method=item.capture_method,
                contact=clean.contact,
                source=inquiry.source,
                answers=inquiry.answers,
                consent=consent,
                account=account,
                flags=clean.flags,
                email_domain=clean.email_domain,
                rating=inquiry.rating,
                notes=inquiry.notes,
                external_id=inquiry.external_id,
                external_system=inquiry.external_system if inquiry.external_id else None,
                attributes=inquiry.attributes,
                historical=item.historical,
            )
            states[new_lead.lead_id] = new_lead
            created.add(new_lead.lead_id)
            events.append((new_lead.lead_id, [captured], at))
            target = new_lead
            if decision.kind == "probable_duplicate" and decision.lead_id is not None:
                survivor = states[decision.lead_id]
                events.append((survivor.lead_id, _merge(survivor, new_lead, decision), at))
                target = survivor
                results.append(
                    IngestResult(survivor.lead_id, item.inquiry_id, True, decision.reason, True)
                )
            else:
                results.append(IngestResult(new_lead.lead_id, item.inquiry_id, False, None, True))
        index.add(target)
        if clean.contact.email:
            identified_emails[clean.contact.email] = target.lead_id
        if item.anonymous_id:
            identified_anon[item.anonymous_id] = target.lead_id

    # One statement writes the leads, their aliases and anonymous links, claims anonymous
    # activity of people who just identified themselves, and fetches/creates the keys the
    # append will seal with (handed to the codec; no key outlives the request task).
    key_leads = list(dict.fromkeys(lead_id for lead_id, _, _ in events))
    saved = await store.save_batch(
        tx,
        [s for s in states.values() if s.dirty],
        now,
        identified_emails=identified_emails,
        identified_anon=identified_anon,
        key_leads=key_leads,
        new_keys=[crypto.new_key() for _ in key_leads],
        responses=[
            (claim[0], claim[1], result.answer())
            for claim, result in zip(idempotency, results, strict=False)
            if claim is not None
        ],
    )
    crypto.use_keys(saved.keys)
    for lead_id, payloads, at in events:
        # A new lead's stream starts at 0: saying so spares the append reading its version.
        new_stream = lead_id in created
        created.discard(lead_id)
        await uow.append(
            lead_id, payloads, occurred_at=at, expected_version=0 if new_stream else None
        )
    # Anonymous activity of people who just identified themselves joins their lead.
    for lead_id, payload, occurred in saved.activities:
        await uow.append(lead_id, ActivityRecorded.model_validate(payload), occurred_at=occurred)
    return results


def identity_keys(items: Sequence[IngestItem]) -> set[str]:
    """The identity-lock keys of these inquiries (see ``store.lock_identities``)."""
    keys: set[str] = set()
    for c in (i.inquiry.clean for i in items):
        if c.contact.email:
            keys.add(f"e:{c.contact.email}")
        if c.contact.phone:
            keys.add(f"p:{c.contact.phone}")
        name = domain.name_key(c.contact.first_name, c.contact.last_name)
        if name and c.company_domain:
            keys.add(f"n:{c.company_domain}|{name}")
    return keys


class _IdentityIndex:
    """Leads of this batch by email, phone and name-at-domain, so resolving each item looks
    at its few real candidates instead of every lead seen so far."""

    def __init__(self) -> None:
        self.position: dict[uuid.UUID, int] = {}
        self.email: dict[str, uuid.UUID] = {}
        self.phone: dict[str, uuid.UUID] = {}
        self.name: dict[tuple[str, str], uuid.UUID] = {}

    def add(self, state: LeadState) -> None:
        self.position.setdefault(state.lead_id, len(self.position))
        for email in state.emails:
            self.email[email] = state.lead_id
        if state.contact.phone:
            self.phone.setdefault(state.contact.phone, state.lead_id)
        key = domain.name_key(state.contact.first_name, state.contact.last_name)
        if key and state.company_domain:
            self.name.setdefault((state.company_domain, key), state.lead_id)

    def candidates(self, clean: domain.CleanContact) -> list[uuid.UUID]:
        c = clean.contact
        found = {
            self.email.get(c.email or ""),
            self.phone.get(c.phone or ""),
            self.name.get(
                (clean.company_domain or "", domain.name_key(c.first_name, c.last_name) or "")
            ),
        }
        found.discard(None)
        return sorted((f for f in found if f is not None), key=self.position.__getitem__)


def _repeat_inquiry(
    lead: LeadState,
    item: IngestItem,
    account: domain.AccountMatch | None,
    at: datetime,
    consent: ConsentRecord | None,
) -> list[Any]:
    inquiry = item.inquiry
    payloads: list[Any] = [
        InquiryReceived(
            inquiry_id=item.inquiry_id,
            capture_method=item.capture_method,
            source=inquiry.source,
            answers=inquiry.answers,
            rating=inquiry.rating,
            notes=inquiry.notes,
            external_id=inquiry.external_id,
            external_system=inquiry.external_system if inquiry.external_id else None,
            attributes=inquiry.attributes,
            historical=item.historical,
        )
    ]
    lead.inquiries += 1
    lead.dirty = True
    profile, changed = domain.apply_contact(lead.profile(), inquiry.clean.contact, at)
    if changed:
        lead.contact = profile.contact
        lead.field_times = dict(profile.field_times)
        if inquiry.clean.company_domain and lead.company_domain is None:
            lead.company_domain = inquiry.clean.company_domain
        new_account = lead.account
        if account is not None and (lead.account is None or "email" in changed):
            new_account = account
        changed_account = new_account != lead.account
        lead.account = new_account
        payloads.append(
            LeadProfileUpdated(
                changed_fields=[*changed, *(["account"] if changed_account else [])],
                contact=lead.contact,
                answers=inquiry.answers,
                account=lead.account,
                reason="newer_inquiry",
            )
        )
    stated = domain.consent_change(lead.consent, consent)
    if stated is not None:
        lead.consent = stated
        payloads.append(
            ConsentChanged(
                marketing_opt_in=stated.marketing_opt_in,
                text_version=stated.text_version,
                source=stated.source,
            )
        )
    return payloads


def _merge(survivor: LeadState, duplicate: LeadState, decision: IdentityDecision) -> list[Any]:
    outcome = domain.merge_profiles(survivor.profile(), duplicate.profile())
    changed = [
        k for k, v in outcome.contact.model_dump().items() if v != getattr(survivor.contact, k)
    ]
    payloads: list[Any] = [
        LeadsMerged(
            merged_lead_id=duplicate.lead_id,
            match_reason=decision.reason or "manual",
            field_sources=outcome.field_sources,
        )
    ]
    survivor.contact = outcome.contact
    survivor.field_times = dict(outcome.field_times)
    survivor.emails |= duplicate.emails
    survivor.new_emails |= duplicate.new_emails
    duplicate.new_emails = set()
    survivor.inquiries += duplicate.inquiries
    survivor.account = survivor.account or duplicate.account
    survivor.dirty = True
    duplicate.merged_into = survivor.lead_id
    if changed:
        payloads.append(
            LeadProfileUpdated(
                changed_fields=changed,
                contact=survivor.contact,
                account=survivor.account,
                reason="merge",
            )
        )
    if outcome.consent_changed and outcome.consent is not None:
        before = survivor.consent
        survivor.consent = outcome.consent
        if before is None or before.marketing_opt_in != outcome.consent.marketing_opt_in:
            # The duplicate carried the person's later answer: it is theirs, not inferred.
            payloads.append(
                ConsentChanged(
                    marketing_opt_in=outcome.consent.marketing_opt_in,
                    text_version=outcome.consent.text_version,
                    source=outcome.consent.source,
                )
            )
    return payloads


async def _live_row(uow: UnitOfWork, lead_id: uuid.UUID) -> Any:
    """The lead a change applies to: the survivor when ``lead_id`` was merged into one."""
    from leadflow.events.errors import UnknownLead

    row = await store.get_lead(uow.tx, lead_id)
    if row is not None and row.merged_into is not None:
        row = await store.get_lead(uow.tx, row.merged_into)
    if row is None or row.erased_at is not None:
        raise UnknownLead(lead_id)
    return row


async def change_consent(uow: UnitOfWork, lead_id: uuid.UUID, consent: ConsentRecord) -> bool:
    """Record an explicit marketing e-mail opt-in/opt-out; returns whether anything changed."""
    row = await _live_row(uow, lead_id)
    current = ConsentRecord(**row.consent) if row.consent else None
    change = domain.consent_change(current, consent)
    if change is None:
        return False
    await store.set_consent(uow.tx, row.lead_id, change, uow.clock.now())
    await uow.append(
        row.lead_id,
        ConsentChanged(
            marketing_opt_in=change.marketing_opt_in,
            text_version=change.text_version,
            source=change.source,
        ),
    )
    return True


async def change_do_not_contact(
    uow: UnitOfWork,
    lead_id: uuid.UUID,
    do_not_contact: bool,
    reason: str | None,
    source: str | None,
) -> bool:
    """Record that the person asked for no contact at all, or lifted that request; returns
    whether anything changed. It leaves marketing consent as it is (docs/consent.md)."""
    row = await _live_row(uow, lead_id)
    if bool(row.do_not_contact) == do_not_contact:
        return False
    await store.set_do_not_contact(uow.tx, row.lead_id, do_not_contact, uow.clock.now())
    await uow.append(
        row.lead_id,
        DoNotContactChanged(do_not_contact=do_not_contact, reason=reason, source=source),
    )
    return True


async def erase(
    uow: UnitOfWork, lead_id: uuid.UUID, reason: str | None, requested_by: str | None
) -> list[uuid.UUID]:
    """Crypto-shred a lead (and the duplicates merged into it): delete the keys, blank the
    read tables, append ``LeadErased``. The event log itself is not touched."""
    row = await store.get_lead(uow.tx, lead_id)
    if row is None:
        from leadflow.events.errors import UnknownLead

        raise UnknownLead(lead_id)
    survivor = row.merged_into or lead_id
    ids = [survivor, *await store.merged_into(uow.tx, survivor)]
    already = row.erased_at is not None
    await store.erase_lead_rows(uow.tx, ids, uow.clock.now())
    if not already:
        for erased in ids:
            await uow.append(erased, LeadErased(reason=reason, requested_by=requested_by))
    crypto.use_keys(dict.fromkeys(ids))
    return ids


# ---------------------------------------------------------------------------------------
# Activities


@dataclass(frozen=True)
class ActivityItem:
    activity_id: str
    activity_type: str
    occurred_at: datetime
    email: str | None
    lead_id: uuid.UUID | None
    anonymous_id: str | None
    url: str | None
    content_id: str | None
    campaign: str | None
    properties: dict[str, PropertyValue]


async def record_activities(uow: UnitOfWork, items: Sequence[ActivityItem]) -> list[dict[str, Any]]:
    """Record a batch: on the lead when we know who it was, else kept anonymous until the
    person identifies (by email or anonymous id). Replays of an ``activity_id`` are
    duplicates."""
    tx = uow.tx
    now = uow.clock.now()
    seen = await store.existing_activity_ids(tx, [i.activity_id for i in items])
    by_email = await store.lead_ids_by_emails(tx, [i.email for i in items if i.email])
    by_id = await store.live_lead_ids(tx, [i.lead_id for i in items if i.lead_id])
    by_anon = await store.anonymous_owners(tx, [i.anonymous_id for i in items if i.anonymous_id])
    rows: list[dict[str, Any]] = []
    out: list[dict[str, Any]] = []
    links: dict[str, uuid.UUID] = {}
    batch_ids: set[str] = set()
    for item in items:
        if item.activity_id in seen or item.activity_id in batch_ids:
            out.append({"activity_id": item.activity_id, "status": "duplicate"})
            continue
        batch_ids.add(item.activity_id)
        lead: uuid.UUID | None = None
        if item.lead_id is not None:
            lead = by_id.get(item.lead_id)
            if lead is None:
                out.append(
                    {
                        "activity_id": item.activity_id,
                        "status": "rejected",
                        "field": "lead_id",
                        "reason": "unknown lead",
                    }
                )
                continue
        elif item.email and item.email in by_email:
            lead = by_email[item.email]
        elif item.anonymous_id and item.anonymous_id in by_anon:
            lead = by_anon[item.anonymous_id]
        elif item.anonymous_id and item.anonymous_id in links:
            lead = links[item.anonymous_id]
        if lead is not None and item.anonymous_id and item.anonymous_id not in by_anon:
            links[item.anonymous_id] = lead
        activity = ActivityRecorded(
            activity_id=item.activity_id,
            activity_type=item.activity_type,
            url=item.url,
            content_id=item.content_id,
            campaign=item.campaign,
            properties=item.properties,
            anonymous_id=item.anonymous_id,
            channel=item.properties.get("channel"),
        )
        rows.append(
            {
                "activity_id": item.activity_id,
                "lead_id": lead,
                "anonymous_id": item.anonymous_id,
                "email": item.email if lead is None else None,
                "payload": activity.model_dump(mode="json"),
                "occurred_at": item.occurred_at,
                "attached_at": now if lead else None,
            }
        )
        if lead is not None:
            await uow.append(lead, activity, occurred_at=item.occurred_at)
            out.append(
                {"activity_id": item.activity_id, "status": "accepted", "lead_id": str(lead)}
            )
        else:
            out.append({"activity_id": item.activity_id, "status": "anonymous"})
    await store.insert_activities(tx, rows)
    await store.link_anonymous(tx, links)
    # An activity that names both a known lead and an anonymous id identifies that id:
    # earlier anonymous activity under it joins the lead now.
    for lead_id, payload, occurred in await store.claim_pending_activities(tx, {}, links, now):
        await uow.append(lead_id, ActivityRecorded.model_validate(payload), occurred_at=occurred)
    return out
