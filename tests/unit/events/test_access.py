"""The permission table and token verification (pure, no I/O but an in-process JWKS)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from leadflow.console.keys import SigningKey
from leadflow.events.access import (
    PERMISSIONS,
    Permission,
    Principal,
    Role,
    expected,
    principal_from_claims,
)
from leadflow.events.tokens import InvalidToken, TokenVerifier, VerifierConfig

ISSUER = "https://login.example.com/realms/acme"


def token(key: SigningKey, **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "aud": "leadflow", "sub": "u1", "iat": now, "exp": now + 300}
    body.update(claims)
    return jwt.encode(body, key.private, algorithm="EdDSA", headers={"kid": key.kid})


def test_every_permission_has_a_rule_and_admin_holds_every_person_permission() -> None:
    assert set(PERMISSIONS) == set(Permission)
    for permission, rule in PERMISSIONS.items():
        if rule.api_key_scope is None:
            assert Role.ADMIN in rule.roles, permission
        assert rule.own_leads <= rule.roles


def test_a_rep_acts_on_own_leads_only_and_a_manager_on_all() -> None:
    rep = Principal("u", "user", frozenset({Role.REP}), rep_id="jane")
    manager = Principal("m", "user", frozenset({Role.SALES_MANAGER, Role.REP}), rep_id="max")
    assert rep.can(Permission.HANDOFF) and rep.own_leads(Permission.HANDOFF) == "jane"
    assert manager.own_leads(Permission.HANDOFF) is None
    unbound = Principal("x", "user", frozenset({Role.REP}))
    assert unbound.own_leads(Permission.HANDOFF) == ""  # owns nothing
    assert not rep.can(Permission.REPORTS) and not rep.can(Permission.CAPTURE_INQUIRIES)


def test_the_matrix_of_credentials() -> None:
    assert expected(Permission.PUBLIC, "none")
    assert not expected(Permission.REPORTS, "none")
    assert expected(Permission.REPORTS, "analyst") and not expected(Permission.REPORTS, "rep")
    assert expected(Permission.OPERATIONS, "admin_token")
    assert expected(Permission.CAPTURE_SCANS, "api_key")
    assert not expected(Permission.CAPTURE_SCANS, "admin") and not expected(
        Permission.REPORTS, "api_key"
    )


def test_roles_and_grants_come_from_a_configurable_claim() -> None:
    keycloak = {
        "sub": "abc",
        "realm_access": {"roles": ["analyst", "personal_data", "offline_access"]},
        "employee": {"rep": "r7"},
    }
    who = principal_from_claims(keycloak, "realm_access.roles", "employee.rep")
    assert who.roles == {Role.ANALYST} and who.sees_personal_fields and who.rep_id == "r7"
    plain = principal_from_claims({"sub": "x", "roles": "analyst"}, "roles")
    assert plain.roles == {Role.ANALYST} and not plain.sees_personal_fields


def _serving(jwks: dict[str, Any], calls: list[str]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if request.url.path.endswith("openid-configuration"):
            return httpx.Response(200, json={"jwks_uri": f"{ISSUER}/certs"})
        return httpx.Response(200, json=jwks)

    return httpx.MockTransport(handle)


@pytest.fixture
def patched_http(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The issuer's HTTP endpoints, in process: discovery, then its JWKS."""
    state: dict[str, Any] = {"jwks": {"keys": []}, "calls": []}
    real = httpx.AsyncClient

    def client(**kwargs: Any) -> httpx.AsyncClient:
        return real(transport=_serving(state["jwks"], state["calls"]), **kwargs)

    monkeypatch.setattr(httpx, "AsyncClient", client)
    return state


async def test_keys_are_discovered_cached_and_refetched_on_an_unknown_kid(
    patched_http: dict[str, Any],
) -> None:
    first, second = (
        SigningKey(Ed25519PrivateKey.generate()),
        SigningKey(Ed25519PrivateKey.generate()),
    )
    patched_http["jwks"]["keys"] = first.jwks()["keys"]
    verifier = TokenVerifier(VerifierConfig(issuer=ISSUER, refetch_interval=0.0))
    assert (await verifier.verify(token(first, roles=["rep"])))["roles"] == ["rep"]
    assert patched_http["calls"] == [
        "/realms/acme/.well-known/openid-configuration",
        "/realms/acme/certs",
    ]
    await verifier.verify(token(first))
    assert len(patched_http["calls"]) == 2  # cached
    patched_http["jwks"]["keys"] = second.jwks()["keys"]  # the issuer rotated its key
    await verifier.verify(token(second))
    assert len(patched_http["calls"]) == 4


async def test_unknown_kids_do_not_hammer_the_issuer(patched_http: dict[str, Any]) -> None:
    key, stranger = (
        SigningKey(Ed25519PrivateKey.generate()),
        SigningKey(Ed25519PrivateKey.generate()),
    )
    patched_http["jwks"]["keys"] = key.jwks()["keys"]
    verifier = TokenVerifier(VerifierConfig(issuer=ISSUER, jwks_url=f"{ISSUER}/certs"))
    await verifier.verify(token(key))
    for _ in range(5):
        with pytest.raises(InvalidToken, match="unknown signing key"):
            await verifier.verify(token(stranger))
    assert patched_http["calls"] == [
        "/realms/acme/certs"
    ]  # within the refetch interval: no new fetch


@pytest.mark.parametrize(
    ("claims", "why"),
    [
        ({"exp": int(time.time()) - 120}, "expired"),
        ({"iss": "https://evil.example.com"}, "issuer"),
        ({"aud": "someone-else"}, "(?i)audience"),
    ],
)
async def test_wrong_expiry_issuer_or_audience_is_refused(claims: dict[str, Any], why: str) -> None:
    key = SigningKey(Ed25519PrivateKey.generate())
    verifier = TokenVerifier(VerifierConfig(issuer=ISSUER))
    verifier.add_local_keys(key.jwks())
    with pytest.raises(InvalidToken, match=why):
        await verifier.verify(token(key, **claims))


async def test_symmetric_and_unsigned_tokens_are_refused() -> None:
    key = SigningKey(Ed25519PrivateKey.generate())
    verifier = TokenVerifier(VerifierConfig(issuer=ISSUER))
    verifier.add_local_keys(key.jwks())
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": "leadflow", "sub": "u", "iat": now, "exp": now + 60}
    hs = jwt.encode(claims, "k" * 32, algorithm="HS256", headers={"kid": key.kid})
    unsigned = jwt.encode(claims, None, algorithm="none", headers={"kid": key.kid})
    for bad in (hs, unsigned):
        with pytest.raises(InvalidToken, match="not accepted"):
            await verifier.verify(bad)
