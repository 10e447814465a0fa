"""Admin routes for the roster: reps, teams and queues (documents, deletes refused while
anything still uses them) and account owners.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated

from fastapi import APIRouter, Body, Path
from pydantic import BaseModel, ConfigDict, Field

from leadflow.events import KitDep
from leadflow.events.access import Permission, requires
from leadflow.routing import store
from leadflow.routing.api.common import (
    SLUG,
    Doc,
    IdPath,
    config_cache,
    not_found,
    refused,
    validated,
)
from leadflow.routing.commands.roster import (
    RemoveFromRoster,
    RosterKind,
    SetAccountOwner,
    decide_account_owner,
    decide_removal,
)
from leadflow.routing.domain import (
    CommandRefused,
    Queue,
    Rep,
    Team,
)

router = APIRouter(dependencies=[requires(Permission.ROUTING_CONFIG)])


def _doc_routes(kind: RosterKind, plural: str, cls: type[Rep] | type[Team] | type[Queue]) -> None:
    async def put(kit: KitDep, id_: IdPath, body: Annotated[Doc, Body()]) -> Doc:
        model = validated(cls, {**body, "id": id_})
        async with kit.unit_of_work() as uow:
            await store.put_doc(uow.tx, model)
        return model.model_dump(mode="json")

    async def get(kit: KitDep, id_: IdPath) -> Doc:
        async with kit.connect() as tx:
            model = await store.get_doc(tx, cls, id_)
        if model is None:
            raise not_found(kind, id_)
        return model.model_dump(mode="json")

    async def list_(kit: KitDep) -> list[Doc]:
        async with kit.connect() as tx:
            return [m.model_dump(mode="json") for m in await store.list_docs(tx, cls)]

    async def delete(kit: KitDep, id_: IdPath) -> None:
        async with kit.unit_of_work() as uow:
            # Under the decision lock: no lead is assigned to it while the check runs.
            await store.decision_lock(uow.tx)
            if await store.get_doc(uow.tx, cls, id_) is None:
                raise not_found(kind, id_)
            config = await config_cache(kit).get(uow.tx)
            leads = await store.open_leads_of(uow.tx, kind, id_)
            try:
                decide_removal(RemoveFromRoster(kind, id_), config.rules, config.roster, leads)
            except CommandRefused as refusal:
                raise refused(refusal) from None
            await store.delete_doc(uow.tx, cls, id_)
            if cls is Rep:  # a rep who is gone works no queue: their tokens go with them
                await store.revoke_rep_tokens(uow.tx, id_)

    path = f"/v1/routing/{plural}"
    tags: list[str | Enum] = ["admin"]
    router.add_api_route(
        f"{path}/{{id_}}", put, methods=["PUT"], tags=tags, summary=f"Create or replace a {kind}"
    )
    router.add_api_route(f"{path}/{{id_}}", get, methods=["GET"], tags=tags, summary=f"One {kind}")
    router.add_api_route(path, list_, methods=["GET"], tags=tags, summary=f"All {plural}")
    router.add_api_route(
        f"{path}/{{id_}}",
        delete,
        methods=["DELETE"],
        status_code=204,
        tags=tags,
        summary=f"Remove a {kind}",
    )


_doc_routes("rep", "reps", Rep)
_doc_routes("team", "teams", Team)
_doc_routes("queue", "queues", Queue)


class AccountOwnerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rep_id: str = Field(pattern=SLUG)


@router.put("/v1/routing/accounts/{account_key}", tags=["admin"], summary="Set an account's owner")
async def put_account_owner(
    kit: KitDep,
    account_key: Annotated[str, Path(min_length=1, max_length=255)],
    body: AccountOwnerIn,
) -> dict[str, str]:
    cmd = SetAccountOwner(account_key, body.rep_id)
    async with kit.unit_of_work() as uow:
        config = await config_cache(kit).get(uow.tx)
        try:
            decide_account_owner(cmd, config.roster)
        except CommandRefused as refusal:
            raise refused(refusal) from None
        await store.set_account_owner(uow.tx, account_key, body.rep_id)
    return {"account_key": account_key.lower(), "rep_id": body.rep_id}


@router.delete("/v1/routing/accounts/{account_key}", status_code=204, tags=["admin"])
async def delete_account_owner(kit: KitDep, account_key: str) -> None:
    async with kit.unit_of_work() as uow:
        await store.set_account_owner(uow.tx, account_key, None)


@router.get("/v1/routing/accounts", tags=["admin"], summary="Account owners")
async def list_account_owners(kit: KitDep) -> dict[str, str]:
    async with kit.connect() as tx:
        return await store.account_owners(tx)
