"""A person's browser session: the access token in an HttpOnly cookie, CSRF on every POST.

The session *is* the token ``POST /v1/auth/token`` issues: the console keeps no session
table, so a token's expiry ends the session everywhere at once, and the services receive
exactly the credential they verify. The cookie is HttpOnly (no script reads it) and
SameSite=Lax (another site's form post carries no cookie); on top of that every POST
carries a CSRF token (double submit: a random value in its own cookie, repeated in the form
or the ``X-CSRF-Token`` header htmx sends), compared in constant time.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from fastapi import Request, Response

from leadflow.events import ServiceKit
from leadflow.events.access import Principal, principal_from_claims, verifier_of
from leadflow.events.tokens import InvalidToken

SESSION_COOKIE = "leadflow_session"
CSRF_COOKIE = "leadflow_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"


def set_session(request: Request, response: Response, token: str, max_age: int) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=_secure(request),
        path="/",
    )


def clear_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")


def csrf_token(request: Request) -> str:
    """This browser's CSRF value (made on first sight; :func:`keep_csrf` stores it)."""
    current = request.cookies.get(CSRF_COOKIE, "")
    if len(current) >= 32:
        return current
    fresh = getattr(request.state, "csrf_fresh", None)
    if fresh is None:
        fresh = secrets.token_urlsafe(32)
        request.state.csrf_fresh = fresh
    return str(fresh)


def keep_csrf(request: Request, response: Response) -> None:
    fresh = getattr(request.state, "csrf_fresh", None)
    if fresh is not None:
        response.set_cookie(
            CSRF_COOKIE, fresh, httponly=True, samesite="lax", secure=_secure(request), path="/"
        )


def csrf_ok(request: Request, form: dict[str, Any]) -> bool:
    expected = request.cookies.get(CSRF_COOKIE, "")
    given = str(form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER) or "")
    return len(expected) >= 32 and hmac.compare_digest(expected.encode(), given.encode())


async def principal_of(kit: ServiceKit, request: Request) -> Principal | None:
    """Who the session cookie belongs to, verified as every service verifies it (the
    console's own keys are local to its verifier, so this needs no network); None when
    there is no cookie or it is expired or not valid."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    try:
        claims = await verifier_of(kit).verify(token)
    except InvalidToken:
        return None
    s = kit.settings
    return principal_from_claims(claims, s.auth_roles_claim, s.auth_rep_claim)


def token_of(request: Request) -> str:
    return request.cookies.get(SESSION_COOKIE, "")
