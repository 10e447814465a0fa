"""The console's pure rules: who a user may be, what their token says, when sign-in waits.

No I/O here: the API hashes passwords and reads the tables, then asks these functions.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from leadflow.events.access import PERSONAL_DATA, Role

# What the roles field accepts: the five roles and the personal_data grant.
ROLE_VALUES = frozenset({*(r.value for r in Role), PERSONAL_DATA})


@dataclass(frozen=True)
class User:
    user_id: uuid.UUID
    email: str
    name: str
    roles: tuple[str, ...]
    rep_id: str | None
    created_at: datetime
    updated_at: datetime

    def public(self) -> dict[str, Any]:
        """The user as the API shows it: never the password hash."""
        return {
            "id": str(self.user_id),
            "email": self.email,
            "name": self.name,
            "roles": list(self.roles),
            "rep_id": self.rep_id,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


def role_errors(roles: list[str], rep_id: str | None) -> list[dict[str, str]]:
    """Why a (roles, rep_id) pair cannot be a user: a rep works one routing rep's leads, so
    the rep role needs a rep id, and a rep id on someone who is no rep would mean nothing."""
    errors = [
        {"field": f"roles[{i}]", "message": f"must be one of {sorted(ROLE_VALUES)}"}
        for i, role in enumerate(roles)
        if role not in ROLE_VALUES
    ]
    if Role.REP.value in roles and not rep_id:
        errors.append({"field": "rep_id", "message": "required for the rep role"})
    if rep_id and Role.REP.value not in roles:
        errors.append({"field": "rep_id", "message": "only a user with the rep role has one"})
    return errors


def token_claims(
    user: User, *, issuer: str, audience: str, now: datetime, ttl: timedelta
) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": str(user.user_id),
        "iat": int(now.timestamp()),
        "nbf": int(now.timestamp()),
        "exp": int((now + ttl).timestamp()),
        "jti": str(uuid.uuid4()),
        "email": user.email,
        "name": user.name,
        "roles": sorted(user.roles),
    }
    if audience:
        claims["aud"] = audience
    if user.rep_id:
        claims["rep_id"] = user.rep_id
    return claims


def retry_after(
    failures: list[datetime], limit: int, window: timedelta, now: datetime
) -> float | None:
    """Seconds a sign-in must wait, or None: ``limit`` failures within ``window`` lock the
    key until the oldest of them leaves the window (a sliding window, no permanent lock
    that a stranger could use to keep a person out)."""
    recent = sorted(t for t in failures if now - t < window)
    if len(recent) < limit:
        return None
    unlock = recent[-limit] + window
    return max((unlock - now).total_seconds(), 1.0)


def discovery(issuer: str, algorithms: list[str]) -> dict[str, Any]:
    """The OpenID Provider metadata (a subset: this issuer has the password grant only)."""
    base = issuer.rstrip("/")
    return {
        "issuer": issuer,
        "jwks_uri": f"{base}/.well-known/jwks.json",
        "token_endpoint": f"{base}/v1/auth/token",
        "userinfo_endpoint": f"{base}/v1/me",
        "grant_types_supported": ["password"],
        "response_types_supported": ["token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": algorithms,
        "token_endpoint_auth_methods_supported": ["none"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "email", "name", "roles", "rep_id"],
        "scopes_supported": ["openid"],
    }
