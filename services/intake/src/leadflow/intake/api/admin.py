"""Intake's admin surface: web form definitions, API keys, registered company accounts."""

from __future__ import annotations

import secrets
import uuid

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from leadflow.events import KitDep
from leadflow.events.envelope import new_id
from leadflow.events.errors import Problem
from leadflow.intake import domain, store
from leadflow.intake import responses as rs
from leadflow.intake.api.credentials import AccountsDep, ApiKeysDep, FormsDep
from leadflow.intake.api.forms import _load_form, check_field_map
from leadflow.intake.api.runtime import runtime
from leadflow.intake.responses import ok
from leadflow.intake.schemas import (
    AccountIn,
    ApiKeyIn,
    FormIn,
)
from leadflow.intake.security import (
    display_prefix,
    generate_api_key,
    hash_api_key,
)

router = APIRouter()


# ---------------------------------------------------------------------------------------
# Admin: forms, API keys, accounts


@router.post(
    "/v1/admin/forms",
    status_code=201,
    tags=["admin"],
    responses=ok(rs.Form, 201),
    summary="Create a form",
)
async def create_form(body: FormIn, kit: KitDep, _admin: FormsDep) -> JSONResponse:
    check_field_map(body)
    form_key = body.form_key or f"f_{secrets.token_urlsafe(12)}"
    definition = body.model_copy(update={"form_key": form_key}).model_dump()
    async with kit.unit_of_work() as uow:
        if await store.get_form(uow.tx, form_key) is not None:
            raise Problem(
                409,
                "Form exists",
                f"form {form_key!r} exists; PUT replaces it",
                errors=[{"field": "form_key", "message": "already exists"}],
            )
        await store.put_form(uow.tx, form_key, definition)
    runtime(kit).forms.forget(form_key)
    return JSONResponse(
        definition, status_code=201, headers={"Location": f"/v1/admin/forms/{form_key}"}
    )


@router.put(
    "/v1/admin/forms/{form_key}",
    tags=["admin"],
    responses=ok(rs.Form),
    summary="Create or replace a form",
)
async def put_form(form_key: str, body: FormIn, kit: KitDep, _admin: FormsDep) -> JSONResponse:
    if body.form_key not in (None, form_key):
        raise Problem(
            422,
            "Form key mismatch",
            "the body names another form key",
            errors=[{"field": "form_key", "message": "differs from the path"}],
        )
    check_field_map(body)
    definition = body.model_copy(update={"form_key": form_key}).model_dump()
    FormIn.model_validate(definition)
    async with kit.unit_of_work() as uow:
        await store.put_form(uow.tx, form_key, definition)
    runtime(kit).forms.forget(form_key)
    return JSONResponse(definition)


@router.get("/v1/admin/forms", tags=["admin"], responses=ok(rs.FormList), summary="List forms")
async def list_forms(kit: KitDep, _admin: FormsDep) -> JSONResponse:
    async with kit.connect() as tx:
        return JSONResponse({"items": await store.list_forms(tx)})


@router.get("/v1/admin/forms/{form_key}", tags=["admin"], responses=ok(rs.Form), summary="One form")
async def get_form(form_key: str, kit: KitDep, _admin: FormsDep) -> JSONResponse:
    return JSONResponse((await _load_form(kit, form_key, cached=False)).model_dump())


@router.delete(
    "/v1/admin/forms/{form_key}", status_code=204, tags=["admin"], summary="Delete a form"
)
async def delete_form(form_key: str, kit: KitDep, _admin: FormsDep) -> Response:
    async with kit.unit_of_work() as uow:
        if not await store.delete_form(uow.tx, form_key):
            raise Problem(
                404,
                "Unknown form",
                f"no form with key {form_key!r}",
                errors=[{"field": "form_key", "message": "unknown form"}],
            )
    runtime(kit).forms.forget(form_key)
    return Response(status_code=204)


@router.post(
    "/v1/admin/api-keys",
    status_code=201,
    responses=ok(rs.ApiKeyIssued, 201),
    tags=["admin"],
    summary="Create an API key (the key is shown once, only its hash is kept)",
)
async def create_api_key(body: ApiKeyIn, kit: KitDep, _admin: ApiKeysDep) -> JSONResponse:
    key = generate_api_key()
    key_id = new_id()
    async with kit.unit_of_work() as uow:
        await store.insert_api_key(
            uow.tx,
            key_id,
            body.name,
            hash_api_key(key),
            display_prefix(key),
            body.scopes,
            body.device_id,
        )
    return JSONResponse(
        {
            "key_id": str(key_id),
            "key": key,
            "name": body.name,
            "scopes": body.scopes,
            "device_id": body.device_id,
            "prefix": display_prefix(key),
        },
        status_code=201,
    )


@router.get(
    "/v1/admin/api-keys",
    tags=["admin"],
    responses=ok(rs.ApiKeyList),
    summary="List API keys (never the keys)",
)
async def list_api_keys(kit: KitDep, _admin: ApiKeysDep) -> JSONResponse:
    async with kit.connect() as tx:
        rows = await store.list_api_keys(tx)
    return JSONResponse(
        {
            "items": [
                {
                    **r,
                    "key_id": str(r["key_id"]),
                    "created_at": r["created_at"].isoformat(),
                    "revoked_at": r["revoked_at"].isoformat() if r["revoked_at"] else None,
                }
                for r in rows
            ]
        }
    )


@router.delete(
    "/v1/admin/api-keys/{key_id}", status_code=204, tags=["admin"], summary="Revoke an API key"
)
async def revoke_api_key(key_id: uuid.UUID, kit: KitDep, _admin: ApiKeysDep) -> Response:
    async with kit.unit_of_work() as uow:
        found = await store.revoke_api_key(uow.tx, key_id, kit.clock.now())
    if not found:
        raise Problem(
            404,
            "Unknown API key",
            f"no API key {key_id}",
            errors=[{"field": "key_id", "message": "unknown key"}],
        )
    runtime(kit).keys.clear()
    return Response(status_code=204)


@router.put(
    "/v1/admin/accounts/{account_domain}",
    responses=ok(rs.Account),
    tags=["admin"],
    summary="Register a company account by its domain (for lead-to-account match)",
)
async def put_account(
    account_domain: str, body: AccountIn, kit: KitDep, _admin: AccountsDep
) -> JSONResponse:
    account_domain = account_domain.strip().lower()
    if "." not in account_domain or domain.is_free_mail(account_domain):
        raise Problem(
            422,
            "Invalid domain",
            "give a company domain (not free-mail)",
            errors=[{"field": "account_domain", "message": "not a company domain"}],
        )
    if body.owner_rep_id is not None:
        raise Problem(
            422,
            "Account owners are routing's",
            "intake matches leads to accounts; who owns an account is set in routing, which "
            f"assigns by it: PUT /v1/routing/accounts/{account_domain} "
            f'{{"rep_id": "{body.owner_rep_id}"}} (routing\'s admin API)',
            errors=[
                {
                    "field": "owner_rep_id",
                    "message": "set account owners with routing's "
                    "PUT /v1/routing/accounts/{account_key}",
                }
            ],
            extra={"owner_api": f"/v1/routing/accounts/{account_domain}"},
        )
    account = domain.Account(body.account_id, account_domain, body.name, None)
    async with kit.unit_of_work() as uow:
        await store.upsert_account(uow.tx, account)
    return JSONResponse({"domain": account_domain, **body.model_dump()})


@router.get(
    "/v1/admin/accounts",
    tags=["admin"],
    responses=ok(rs.AccountList),
    summary="List registered accounts",
)
async def list_accounts(kit: KitDep, _admin: AccountsDep) -> JSONResponse:
    async with kit.connect() as tx:
        accounts = await store.list_accounts(tx)
    return JSONResponse({"items": [a.__dict__ for a in accounts]})
