"""Who may call intake: API keys with a scope for the capture routes (read from the request,
not as FastAPI parameters, to keep the hot path cheap) and the kernel's permissions for
staff routes, with rate limits on guessing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request

from leadflow.events import ServiceKit, kit_of
from leadflow.events.access import Permission, authorize, declares, presented
from leadflow.events.errors import Problem
from leadflow.intake import store
from leadflow.intake.api.runtime import _limit, client_ip, runtime
from leadflow.intake.security import (
    ApiKey,
    hash_api_key,
)

# ---------------------------------------------------------------------------------------
# Authentication


async def authenticate(
    request: Request, kit: ServiceKit, api_key: str | None, scope: str
) -> ApiKey:
    rt = runtime(kit)
    if not api_key:
        _limit(rt.ip_limiter, client_ip(request, rt.settings), "client IP")
        raise Problem(
            401,
            "Unauthorized",
            "an API key is required",
            errors=[{"field": "X-Api-Key", "message": "missing"}],
            headers={"WWW-Authenticate": "ApiKey"},
        )
    key_hash = hash_api_key(api_key)

    async def load() -> ApiKey | None:
        async with kit.connect() as tx:
            return await store.find_api_key(tx, key_hash)

    key = await rt.keys.lookup(key_hash, load)
    if key is None or key.revoked:
        _limit(rt.ip_limiter, client_ip(request, rt.settings), "client IP")
        raise Problem(
            401,
            "Unauthorized",
            "API key is revoked" if key is not None else "API key is not valid",
            errors=[
                {"field": "X-Api-Key", "message": "revoked" if key is not None else "unknown key"}
            ],
            headers={"WWW-Authenticate": "ApiKey"},
        )
    if scope not in key.scopes:
        raise Problem(
            403,
            "Forbidden",
            f"this API key lacks the {scope!r} scope",
            errors=[{"field": "X-Api-Key", "message": f"needs scope {scope}"}],
        )
    _limit(rt.key_limiter, key.key_id, "API key")
    return key


# The capture routes read their headers from the request themselves (documented through
# ``openapi_extra``): each header FastAPI resolves as a parameter, and each dependency level,
# costs CPU on every request; on POST /v1/inquiries the plain reads saved about 60 us of
# ~180 (in-process ASGI, its route signature with and without them).
API_KEY_PARAMETER: dict[str, Any] = {
    "name": "X-Api-Key",
    "in": "header",
    "required": True,
    "description": "an API key with the route's scope (inquiries, scans or activities)",
    "schema": {"type": "string"},
}
IDEMPOTENCY_KEY_MAX = 200


_CAPTURE = {
    "inquiries": Permission.CAPTURE_INQUIRIES,
    "scans": Permission.CAPTURE_SCANS,
    "activities": Permission.CAPTURE_ACTIVITIES,
}


def require_scope(scope: str) -> Callable[..., Awaitable[ApiKey]]:
    @declares(_CAPTURE[scope])
    async def dependency(request: Request) -> ApiKey:
        return await authenticate(request, kit_of(request), request.headers.get("x-api-key"), scope)

    return dependency


def idempotency_key_of(request: Request) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is not None and len(key) > IDEMPOTENCY_KEY_MAX:
        raise Problem.invalid_fields(
            [{"field": "Idempotency-Key", "message": f"at most {IDEMPOTENCY_KEY_MAX} characters"}]
        )
    return key or None


def staff(permission: Permission) -> Callable[[Request], Awaitable[str]]:
    """A staff route's permission (see ``leadflow.events.access``): a person's token with a
    role that holds it, the admin token, or, for automation, an API key with the ``admin``
    scope (acting as admin on intake's routes only). Yields who acted, for the audit."""

    @declares(permission)
    async def check(request: Request) -> str:
        kit = kit_of(request)
        api_key = request.headers.get("x-api-key")
        if presented(request) is None and api_key:
            key = await authenticate(request, kit, api_key, "admin")
            return f"api-key:{key.key_id}"
        try:
            who = await authorize(request, permission)
        except Problem as exc:
            if exc.status == 401 and presented(request) is not None:  # guessing tokens
                rt = runtime(kit)
                _limit(rt.ip_limiter, client_ip(request, rt.settings), "client IP")
            raise
        return who.subject

    return check


ImportsDep = Annotated[str, Depends(staff(Permission.IMPORTS))]
LeadsReadDep = Annotated[str, Depends(staff(Permission.LEADS_READ))]
ConsentDep = Annotated[str, Depends(staff(Permission.CONSENT))]
ErasureDep = Annotated[str, Depends(staff(Permission.ERASURE))]
FormsDep = Annotated[str, Depends(staff(Permission.FORMS))]
ApiKeysDep = Annotated[str, Depends(staff(Permission.API_KEYS))]
AccountsDep = Annotated[str, Depends(staff(Permission.ACCOUNTS))]
