"""A lead as intake holds it: reads, lookup by e-mail, consent and do-not-contact changes,
erasure.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from leadflow.events import KitDep, UnitOfWork
from leadflow.events.errors import Problem, UnknownLead
from leadflow.intake import commands, domain, store
from leadflow.intake import responses as rs
from leadflow.intake.api.credentials import ConsentDep, ErasureDep, LeadsReadDep
from leadflow.intake.api.runtime import in_transaction
from leadflow.intake.domain import ConsentRecord, FieldError
from leadflow.intake.responses import ok
from leadflow.intake.schemas import (
    ConsentChangeIn,
    ErasureIn,
)

router = APIRouter()


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
    async with kit.connect() as tx:
        row = await store.get_lead(tx, lead_id)
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
    async with kit.connect() as tx:
        row = await store.find_lead_by_email(tx, normalized)
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
