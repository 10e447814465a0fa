"""Reps' personal tokens: issued and revoked by an admin, resolved into the rep's
principal on every route of routing.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from leadflow.events import KitDep, ServiceKit
from leadflow.events.access import Permission, Principal, Role, requires
from leadflow.routing import store
from leadflow.routing.api.common import (
    Doc,
    IdPath,
    not_found,
)
from leadflow.routing.domain import (
    Rep,
    looks_like_rep_token,
    new_rep_token,
    rep_token_digest,
)

router = APIRouter(dependencies=[requires(Permission.ROUTING_CONFIG)])


async def rep_token_principal(kit: ServiceKit, token: str) -> Principal | None:
    """A rep's personal token (``lfr_...``) is that rep's credential on every route of
    routing, the same as a signed-in rep's token (the kernel asks this for bearer tokens
    that are neither the admin token nor a JWT)."""
    if not looks_like_rep_token(token):
        return None
    async with kit.connect() as tx:
        rep_id = await store.rep_of_token(tx, rep_token_digest(token))
    if rep_id is None:
        return None
    return Principal(f"rep-token:{rep_id}", "rep_token", frozenset({Role.REP}), rep_id=rep_id)


class RepTokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(default="", max_length=200, description="e.g. the device or CRM seat")


@router.post(
    "/v1/routing/reps/{rep_id}/tokens",
    status_code=201,
    tags=["admin"],
    summary="Issue a rep's personal token (shown once)",
)
async def issue_rep_token(kit: KitDep, rep_id: IdPath, body: RepTokenIn) -> Doc:
    token_id, token = new_rep_token()
    async with kit.unit_of_work() as uow:
        if await store.get_doc(uow.tx, Rep, rep_id) is None:
            raise not_found("rep", rep_id)
        row = await store.insert_rep_token(
            uow.tx, token_id, rep_token_digest(token), rep_id, body.name
        )
    return {**row, "token": token}


@router.get("/v1/routing/reps/{rep_id}/tokens", tags=["admin"], summary="A rep's tokens")
async def list_rep_tokens(kit: KitDep, rep_id: IdPath) -> Doc:
    async with kit.connect() as tx:
        return {"rep_id": rep_id, "tokens": await store.rep_tokens(tx, rep_id)}


@router.delete(
    "/v1/routing/reps/{rep_id}/tokens/{token_id}",
    status_code=204,
    tags=["admin"],
    summary="Revoke a rep's token",
)
async def revoke_rep_token(kit: KitDep, rep_id: IdPath, token_id: IdPath) -> None:
    async with kit.unit_of_work() as uow:
        if not await store.revoke_rep_token(uow.tx, rep_id, token_id):
            raise not_found("token", token_id)
