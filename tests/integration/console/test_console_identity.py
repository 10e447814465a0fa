"""The console's identity API against real Postgres: sign-in, users, keys, throttling."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import jwt
import pytest

from leadflow.console.app import create_app
from leadflow.console.settings import ConsoleSettings
from leadflow.testing import app_client

pytestmark = [pytest.mark.postgres]

ADMIN = {"Authorization": "Bearer test-admin-token"}
ISSUER = "http://console.test"


@contextlib.asynccontextmanager
async def console(
    settings_for: Callable[..., Any], **overrides: Any
) -> AsyncIterator[httpx.AsyncClient]:
    settings = settings_for(ConsoleSettings, auth_issuer=ISSUER, **overrides)
    async with app_client(create_app(settings)) as client:
        yield client


async def sign_in(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post(
        "/v1/auth/token",
        data={"grant_type": "password", "username": username, "password": password},
    )


async def test_an_admin_creates_a_rep_who_signs_in_with_a_verifiable_token(
    settings_for: Callable[..., Any],
) -> None:
    async with console(settings_for) as client:
        created = await client.post(
            "/v1/users",
            json={
                "email": "Jane@Example.com",
                "name": "Jane",
                "password": "correct horse battery",
                "roles": ["rep"],
                "rep_id": "jane",
            },
            headers=ADMIN,
        )
        assert created.status_code == 201, created.text
        user = created.json()
        assert "password" not in user and "password_hash" not in user
        assert user["roles"] == ["rep"] and user["rep_id"] == "jane"

        r = await sign_in(client, "jane@example.com", "correct horse battery")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["token_type"] == "bearer" and body["expires_in"] == 900

        jwks = (await client.get("/.well-known/jwks.json")).json()
        [key] = jwks["keys"]
        assert key["kty"] == "OKP" and key["alg"] == "EdDSA" and "d" not in key
        assert jwt.get_unverified_header(body["access_token"])["kid"] == key["kid"]
        claims = jwt.decode(
            body["access_token"],
            key=jwt.PyJWK(key),
            algorithms=["EdDSA"],
            audience="leadflow",
            issuer=ISSUER,
        )
        assert claims["sub"] == user["id"] and claims["roles"] == ["rep"]
        assert claims["rep_id"] == "jane"
        assert claims["exp"] - claims["iat"] == 900
        assert abs(claims["iat"] - time.time()) < 60

        discovery = (await client.get("/.well-known/openid-configuration")).json()
        assert discovery["issuer"] == ISSUER
        assert discovery["jwks_uri"] == f"{ISSUER}/.well-known/jwks.json"
        assert discovery["token_endpoint"] == f"{ISSUER}/v1/auth/token"

        # The token works on the console itself (verified by the kernel), as that person...
        mine = {"Authorization": f"Bearer {body['access_token']}"}
        me = await client.get("/v1/me", headers=mine)
        assert me.status_code == 200 and me.json()["rep_id"] == "jane"
        # ...who is no admin.
        denied = await client.get("/v1/users", headers=mine)
        assert denied.status_code == 403
        assert denied.headers["content-type"] == "application/problem+json"
        assert (await client.get("/v1/users")).status_code == 401


async def test_a_tampered_or_foreign_token_is_refused(settings_for: Callable[..., Any]) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    async with console(settings_for, console_admin_email="root@example.com",
                       console_admin_password="root password 123") as client:  # fmt: skip
        token = (await sign_in(client, "root@example.com", "root password 123")).json()[
            "access_token"
        ]
        assert (
            await client.get("/v1/users", headers={"Authorization": f"Bearer {token}"})
        ).status_code == 200
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
        forged = jwt.encode(claims, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers=header)
        r = await client.get("/v1/users", headers={"Authorization": f"Bearer {forged}"})
        assert r.status_code == 401
        assert "invalid_token" in r.headers["www-authenticate"]
        # The classic confusion: HMAC "signed" with the public key the JWKS publishes.
        public_x = (await client.get("/.well-known/jwks.json")).json()["keys"][0]["x"]
        confused = jwt.encode(
            claims, public_x * 2, algorithm="HS256", headers={"kid": header["kid"]}
        )
        r = await client.get("/v1/users", headers={"Authorization": f"Bearer {confused}"})
        assert r.status_code == 401 and "HS256" in r.json()["detail"]


async def test_users_are_managed_by_admins_with_field_checks(
    settings_for: Callable[..., Any],
) -> None:
    async with console(settings_for) as client:
        base = {"email": "a@example.com", "name": "A", "password": "a long enough one"}
        no_rep = await client.post("/v1/users", json={**base, "roles": ["rep"]}, headers=ADMIN)
        assert no_rep.status_code == 422
        assert [e["field"] for e in no_rep.json()["errors"]] == ["rep_id"]
        unknown = await client.post("/v1/users", json={**base, "roles": ["boss"]}, headers=ADMIN)
        assert unknown.status_code == 422
        assert unknown.json()["errors"][0]["field"] == "roles[0]"
        short = await client.post(
            "/v1/users", json={**base, "password": "short", "roles": ["analyst"]}, headers=ADMIN
        )
        assert short.status_code == 422

        made = await client.post("/v1/users", json={**base, "roles": ["analyst"]}, headers=ADMIN)
        assert made.status_code == 201
        uid = made.json()["id"]
        again = await client.post(
            "/v1/users",
            json={**base, "email": "A@EXAMPLE.COM", "roles": ["analyst"]},
            headers=ADMIN,
        )
        assert again.status_code == 409

        patched = await client.patch(
            f"/v1/users/{uid}",
            json={"roles": ["analyst", "personal_data"], "password": "a brand new password"},
            headers=ADMIN,
        )
        assert patched.status_code == 200, patched.text
        assert patched.json()["roles"] == ["analyst", "personal_data"]
        assert (await sign_in(client, "a@example.com", "a long enough one")).status_code == 401
        signed = await sign_in(client, "a@example.com", "a brand new password")
        assert signed.status_code == 200
        claims = jwt.decode(signed.json()["access_token"], options={"verify_signature": False})
        assert claims["roles"] == ["analyst", "personal_data"]

        listed = (await client.get("/v1/users", headers=ADMIN)).json()
        assert [u["email"] for u in listed["users"]] == ["a@example.com"]
        assert (await client.delete(f"/v1/users/{uid}", headers=ADMIN)).status_code == 204
        assert (await client.get(f"/v1/users/{uid}", headers=ADMIN)).status_code == 404
        assert (await sign_in(client, "a@example.com", "a brand new password")).status_code == 401


async def test_repeated_failures_throttle_sign_in_even_with_the_right_password(
    settings_for: Callable[..., Any],
) -> None:
    async with console(
        settings_for,
        console_admin_email="boss@example.com",
        console_admin_password="the right password",
        console_login_max_failures=3,
    ) as client:
        for _ in range(3):
            wrong = await sign_in(client, "boss@example.com", "a wrong password")
            assert wrong.status_code == 401
            assert wrong.json()["error"] == "invalid_grant"
        locked = await sign_in(client, "boss@example.com", "the right password")
        assert locked.status_code == 429
        assert 1 <= int(locked.headers["retry-after"]) <= 300
        # Another person is not locked out by someone else's failures.
        await client.post(
            "/v1/users",
            json={"email": "c@example.com", "password": "c's own password", "roles": ["analyst"]},
            headers=ADMIN,
        )
        assert (await sign_in(client, "c@example.com", "c's own password")).status_code == 200


async def test_the_signing_key_survives_a_restart(
    settings_for: Callable[..., Any], tmp_path: Any
) -> None:
    async with console(settings_for) as first:
        kid = (await first.get("/.well-known/jwks.json")).json()["keys"][0]["kid"]
    async with console(settings_for) as second:
        assert (await second.get("/.well-known/jwks.json")).json()["keys"][0]["kid"] == kid
    path = tmp_path / "key.pem"
    async with console(settings_for, console_signing_key_file=str(path)) as third:
        from_file = (await third.get("/.well-known/jwks.json")).json()["keys"][0]["kid"]
    assert path.stat().st_mode & 0o777 == 0o600 and from_file != kid
    async with console(settings_for, console_signing_key_file=str(path)) as fourth:
        assert (await fourth.get("/.well-known/jwks.json")).json()["keys"][0]["kid"] == from_file
