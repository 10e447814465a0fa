"""Every route of every service by every role (and no credential): the answers are the
permission table's, and docs/access.md is the table as generated.

Each service runs in process on real Postgres (consumers off: the permission is decided
before a route's work, and the routes that are allowed answer whatever their work answers
with a placeholder request — 404, 422 — but never 401 or 403). People's tokens are signed
with a key of the test's own, which every service is told to trust; the admin token and an
intake API key are the services' real credentials.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import time
import typing
import uuid
from collections.abc import AsyncIterator, Callable
from enum import Enum
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from fastapi.routing import APIRoute

from leadflow.console.keys import SigningKey
from leadflow.devstack import access_doc
from leadflow.devstack.__main__ import available_services
from leadflow.events.access import (
    PERMISSIONS,
    DeclaredRoute,
    Role,
    declared_routes,
    expected,
    verifier_of,
)
from leadflow.events.settings import ServiceSettings
from leadflow.testing import app_client

pytestmark = [pytest.mark.postgres]

ISSUER = "http://matrix.test"
REP_ID = "matrix-rep"
API_KEY = "lf_matrix_key_0123456789"
KEY = SigningKey(Ed25519PrivateKey.generate())


def person(role: Role) -> dict[str, str]:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": "leadflow",
        "sub": f"user-{role.value}",
        "iat": now,
        "exp": now + 600,
        "roles": [role.value],
        **({"rep_id": REP_ID} if role is Role.REP else {}),
    }
    token = jwt.encode(claims, KEY.private, algorithm="EdDSA", headers={"kid": KEY.kid})
    return {"Authorization": f"Bearer {token}"}


def credentials() -> dict[str, dict[str, str]]:
    return {
        "none": {},
        **{role.value: person(role) for role in Role},
        "admin_token": {"Authorization": "Bearer test-admin-token"},
        "api_key": {"X-Api-Key": API_KEY},
    }


def settings_class(module: str) -> type[ServiceSettings]:
    mod = importlib.import_module(f"{module}.settings")
    [cls] = [
        c
        for _, c in inspect.getmembers(mod, inspect.isclass)
        if issubclass(c, ServiceSettings)
        and c is not ServiceSettings
        and c.__module__ == mod.__name__
    ]
    return cls


def placeholder(route: APIRoute, name: str) -> str:
    """A well-formed value for a path parameter (unknown to the service, mostly)."""
    if name == "rep_id":
        return REP_ID  # a rep's own id: the rep may ask, the answer is 404
    param = next(p for p in route.dependant.path_params if p.name == name)
    annotation = param.field_info.annotation
    if typing.get_origin(annotation) is typing.Literal:
        return str(typing.get_args(annotation)[0])
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return str(next(iter(annotation)).value)
    if annotation is uuid.UUID:
        return str(uuid.uuid4())
    if annotation is int:
        return "7"
    if name == "topic":
        return "leadflow.none"
    return "zz-unknown"


def url_of(declared: DeclaredRoute) -> str:
    path = declared.path
    for name in declared.route.param_convertors:
        path = path.replace("{" + name + "}", placeholder(declared.route, name))
    return path


@contextlib.asynccontextmanager
async def running(
    settings_for: Callable[..., Any], isolation: Any
) -> AsyncIterator[dict[str, tuple[FastAPI, httpx.AsyncClient]]]:
    apps: dict[str, tuple[FastAPI, httpx.AsyncClient]] = {}
    async with contextlib.AsyncExitStack() as stack:
        for spec in available_services():
            settings = settings_for(
                settings_class(spec.module),
                run_consumers=False,
                auth_issuer=ISSUER,
                **(
                    {
                        "intake_bootstrap_api_key": API_KEY,
                        "intake_ip_rate_per_second": 10_000,
                        "intake_ip_burst": 10_000,
                    }
                    if spec.name == "intake"
                    else {}
                ),
            )
            app = importlib.import_module(f"{spec.module}.app").create_app(settings)
            client = await stack.enter_async_context(app_client(app, raise_app_exceptions=False))
            verifier_of(app.state.kit).add_local_keys(KEY.jwks())
            apps[spec.name] = (app, client)
        yield apps


async def test_every_route_answers_every_credential_as_the_table_says(
    settings_for: Callable[..., Any], isolation: Any
) -> None:
    creds = credentials()
    wrong: list[str] = []
    checked = 0
    async with running(settings_for, isolation) as apps:
        for service, (app, client) in apps.items():
            for declared in declared_routes(app.routes):
                assert declared.permission is not None, (
                    f"{service} {declared.path} declares no permission "
                    "(requires(Permission.X), public() or declares(...))"
                )
                for method in declared.methods:
                    if method == "HEAD":
                        continue
                    for credential, headers in creds.items():
                        response = await client.request(
                            method,
                            url_of(declared),
                            headers=headers,
                            **({"json": {}} if method in ("POST", "PUT", "PATCH") else {}),
                        )
                        checked += 1
                        allowed = expected(declared.permission, credential)
                        status = response.status_code
                        machine = PERMISSIONS[declared.permission].api_key_scope is not None
                        if allowed:
                            ok = status not in (401, 403)
                        elif credential == "none" or machine:
                            ok = status == 401  # not the credential this route takes
                        elif credential == "api_key":
                            ok = status in (401, 403)  # intake: 403 (no admin scope)
                        else:
                            ok = status == 403
                        if not ok:
                            wrong.append(
                                f"{service} {method} {declared.path} as {credential}: {status} "
                                f"({'allowed' if allowed else 'denied'} by "
                                f"{declared.permission.value}) {response.text[:160]}"
                            )
    assert checked > 1000
    assert wrong == [], "\n".join(wrong)


def test_docs_access_md_is_the_generated_matrix() -> None:
    assert access_doc.DOC.read_text() == access_doc.render(), "run `make schemas`"
