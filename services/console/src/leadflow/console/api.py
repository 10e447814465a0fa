"""The console's identity API: sign-in (OAuth2 password grant), users, JWKS, discovery.

People sign in with ``POST /v1/auth/token`` and carry the short-lived token it returns to
every service, which verifies it in the kernel (:mod:`leadflow.events.access`). Only admins
manage users. Failed sign-ins are counted per user and per client address in the database
(shared by replicas): after ``LEADFLOW_CONSOLE_LOGIN_MAX_FAILURES`` within the window the
endpoint answers 429 with ``Retry-After``, without even checking the password.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, EmailStr, Field

from leadflow.console import domain, store
from leadflow.console.commands import (
    ChangeUser,
    CommandRefused,
    CreateUser,
    DeleteUser,
    SignIn,
    decide_change_user,
    decide_create_user,
    decide_delete_user,
    decide_sign_in,
    decide_sign_in_allowed,
    email_taken,
    unknown_user,
)
from leadflow.console.keys import ALGORITHM, SigningKey
from leadflow.console.rep_email import default_rep_email
from leadflow.console.settings import ConsoleSettings
from leadflow.events import KitDep, ServiceKit
from leadflow.events.access import Permission, Principal, public, requires
from leadflow.events.errors import Problem, UniqueViolation

router = APIRouter()
_hasher = PasswordHasher()
# Verified when the e-mail is unknown, so a wrong address costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash("not a password of anyone")

Password = Annotated[str, Field(min_length=12, max_length=256)]
Roles = Annotated[list[str], Field(max_length=8)]
RepId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]


def settings_of(kit: ServiceKit) -> ConsoleSettings:
    assert isinstance(kit.settings, ConsoleSettings)
    return kit.settings


@dataclass
class ConsoleState:
    """What the console's kit keeps (``ServiceKit[ConsoleState]``): the key it signs
    people's tokens with, loaded by its startup (``app.load_signing_key``)."""

    signing_key: SigningKey | None = None


def signing_key(kit: ServiceKit[ConsoleState]) -> SigningKey:
    key = kit.state.signing_key
    if key is None:
        raise RuntimeError("the console's startup loads the signing key")
    return key


async def hash_password(password: str) -> str:
    # argon2 is deliberately slow (tens of ms): off the event loop.
    return await asyncio.to_thread(_hasher.hash, password)


async def password_matches(stored_hash: str, password: str) -> bool:
    def verify() -> bool:
        try:
            return _hasher.verify(stored_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(verify)


# -- sign-in ---------------------------------------------------------------------------


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int = Field(description="seconds")


@router.post(
    "/v1/auth/token",
    tags=["sign-in"],
    summary="Sign in (OAuth2 password grant): a short-lived token for every service",
    dependencies=[public()],
)
async def issue_token(
    request: Request,
    kit: KitDep,
    username: Annotated[str, Form(min_length=1, max_length=320)],
    password: Annotated[str, Form(min_length=1, max_length=256)],
    grant_type: Annotated[str | None, Form(pattern="^password$")] = None,
) -> TokenOut:
    s = settings_of(kit)
    now = kit.clock.now()
    cmd = SignIn(
        user_key=f"user:{username.strip().lower()}",
        ip_key=f"ip:{request.client.host if request.client else 'unknown'}",
        now=now,
        window=timedelta(seconds=s.console_login_window_seconds),
        max_failures=s.console_login_max_failures,
        ip_max_failures=s.console_login_ip_max_failures,
    )
    async with kit.connect() as tx:
        seen = await store.failures(tx, cmd.keys, now - cmd.window)
    try:
        decide_sign_in_allowed(cmd, seen)
    except CommandRefused as refusal:
        raise refused(refusal) from None
    async with kit.connect() as tx:
        found = await store.credentials_of(tx, username.strip())
    ok = await password_matches(found[1] if found else _DUMMY_HASH, password)
    outcome = decide_sign_in(cmd, ok and found is not None)
    async with kit.unit_of_work() as uow:
        if outcome.record_failures:
            await store.record_failure(uow.tx, list(outcome.record_failures), now)
        if outcome.forget_failures_of is not None and outcome.forget_before is not None:
            await store.forget_failures(uow.tx, outcome.forget_failures_of, outcome.forget_before)
    if outcome.refusal is not None:
        raise refused(outcome.refusal)
    assert found is not None  # granted: the password matched a stored user's
    user = found[0]
    key = signing_key(kit)
    ttl = timedelta(seconds=s.console_access_ttl_seconds)
    claims = domain.token_claims(
        user, issuer=s.auth_issuer, audience=s.auth_audience, now=now, ttl=ttl
    )
    token = jwt.encode(claims, key.private, algorithm=ALGORITHM, headers={"kid": key.kid})
    return TokenOut(access_token=token, expires_in=s.console_access_ttl_seconds)


@router.get(
    "/.well-known/jwks.json",
    tags=["sign-in"],
    summary="The public keys tokens are signed with (JWKS)",
    dependencies=[public()],
)
async def jwks(kit: KitDep) -> dict[str, Any]:
    return signing_key(kit).jwks()


@router.get(
    "/.well-known/openid-configuration",
    tags=["sign-in"],
    summary="OpenID Provider discovery",
    dependencies=[public()],
)
async def openid_configuration(kit: KitDep) -> dict[str, Any]:
    return domain.discovery(settings_of(kit).auth_issuer, [ALGORITHM])


@router.get("/v1/me", tags=["sign-in"], summary="Who the token belongs to")
async def me(
    who: Annotated[Principal, requires(Permission.AUTHENTICATED)],
) -> dict[str, Any]:
    return who.claims


# -- users -----------------------------------------------------------------------------


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: EmailStr
    name: str = Field(default="", max_length=200)
    password: Password
    roles: Roles
    rep_id: RepId | None = None


class UserPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: EmailStr | None = None
    name: str | None = Field(default=None, max_length=200)
    password: Password | None = None
    roles: Roles | None = None
    rep_id: RepId | None = None


def refused(refusal: CommandRefused) -> Problem:
    """A command's refusal as the problem+json the API answers."""
    return refusal.problem()


users = APIRouter(tags=["users"], dependencies=[requires(Permission.USERS)])


@users.post("/v1/users", status_code=201, summary="Create a user")
async def create_user(kit: KitDep, body: UserIn) -> JSONResponse:
    cmd = CreateUser(body.email, body.name, tuple(body.roles), body.rep_id)
    try:
        roles = decide_create_user(cmd)
    except CommandRefused as refusal:
        raise refused(refusal) from None
    password_hash = await hash_password(body.password)
    async with kit.unit_of_work() as uow:
        user = await store.insert_user(
            uow.tx,
            email=cmd.email,
            name=cmd.name,
            password_hash=password_hash,
            roles=list(roles),
            rep_id=cmd.rep_id,
        )
    if user is None:
        raise refused(email_taken(cmd.email))
    out = user.public()
    if user.rep_id:
        out["rep_email"] = await default_rep_email(settings_of(kit), user.rep_id, user.email)
    return JSONResponse(out, status_code=201, headers={"Location": f"/v1/users/{user.user_id}"})


@users.get("/v1/users", summary="Every user")
async def list_users(kit: KitDep) -> dict[str, Any]:
    async with kit.connect() as conn:
        found = await store.list_users(conn)
    return {"count": len(found), "users": [u.public() for u in found]}


@users.get("/v1/users/{user_id}", summary="One user")
async def get_user(kit: KitDep, user_id: uuid.UUID) -> dict[str, Any]:
    async with kit.connect() as conn:
        user = await store.get_user(conn, user_id)
    if user is None:
        raise refused(unknown_user(user_id))
    return user.public()


@users.patch("/v1/users/{user_id}", summary="Change a user's e-mail, name, password, roles")
async def patch_user(kit: KitDep, user_id: uuid.UUID, body: UserPatch) -> dict[str, Any]:
    given = body.model_dump(exclude_unset=True)
    changes: dict[str, Any] = {k: v for k, v in given.items() if k != "password"}
    if "password" in given:
        password = given["password"]
        changes["password_hash"] = None if password is None else await hash_password(password)
    cmd = ChangeUser(user_id, changes)
    try:
        async with kit.unit_of_work() as uow:
            current = await store.get_user(uow.tx, user_id)
            columns = decide_change_user(cmd, current)
            assert current is not None  # decide refuses an unknown user
            updated = await store.update_user(uow.tx, user_id, columns) if columns else current
    except CommandRefused as refusal:
        raise refused(refusal) from None
    except UniqueViolation:
        raise refused(email_taken(str(given.get("email")))) from None
    assert updated is not None
    out = updated.public()
    if updated.rep_id and ("rep_id" in columns or "email" in columns):
        out["rep_email"] = await default_rep_email(settings_of(kit), updated.rep_id, updated.email)
    return out


@users.delete("/v1/users/{user_id}", status_code=204, summary="Delete a user")
async def delete_user(kit: KitDep, user_id: uuid.UUID) -> Response:
    cmd = DeleteUser(user_id)
    try:
        async with kit.unit_of_work() as uow:
            decide_delete_user(cmd, await store.delete_user(uow.tx, cmd.user_id))
    except CommandRefused as refusal:
        raise refused(refusal) from None
    return Response(status_code=204)
