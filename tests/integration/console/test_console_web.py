"""The console's pages against real Postgres: sign-in with a cookie session and CSRF, the
menu each role is offered, sign-out, and a service that cannot be reached shown, not a 500."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from leadflow.console.app import create_app
from leadflow.console.settings import ConsoleSettings
from leadflow.console.web.session import CSRF_COOKIE, SESSION_COOKIE
from leadflow.devstack.procs import free_port
from leadflow.testing import app_client

pytestmark = [pytest.mark.postgres]

ADMIN = {"Authorization": "Bearer test-admin-token"}
PASSWORD = "correct horse battery"


@contextlib.asynccontextmanager
async def console(settings_for: Callable[..., Any]) -> AsyncIterator[httpx.AsyncClient]:
    nowhere = f"http://127.0.0.1:{free_port()}"  # no service listens: pages must say so
    settings = settings_for(
        ConsoleSettings,
        auth_issuer="http://console.test",
        console_intake_url=nowhere,
        console_scoring_url=nowhere,
        console_routing_url=nowhere,
        console_sla_url=nowhere,
        console_analytics_url=nowhere,
    )
    async with app_client(create_app(settings)) as client:
        for email, roles, rep_id in (
            ("rep@example.com", ["rep"], "jane"),
            ("boss@example.com", ["admin"], None),
        ):
            r = await client.post(
                "/v1/users",
                json={
                    "email": email,
                    "name": email.split("@")[0].title(),
                    "password": PASSWORD,
                    "roles": roles,
                    "rep_id": rep_id,
                },
                headers=ADMIN,
            )
            assert r.status_code == 201, r.text
        yield client


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


async def sign_in(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD
) -> httpx.Response:
    page = await client.get("/login")
    assert page.status_code == 200
    return await client.post(
        "/login",
        data={
            "username": email,
            "password": password,
            "csrf_token": csrf_of(page.text),
            "next": "/",
        },
    )


async def test_a_page_without_a_session_sends_the_browser_to_sign_in(
    settings_for: Callable[..., Any],
) -> None:
    async with console(settings_for) as client:
        r = await client.get("/queue")
        assert r.status_code == 303 and r.headers["location"] == "/login?next=/queue"
        htmx = await client.get("/queue/rows", headers={"HX-Request": "true"})
        assert htmx.headers["hx-redirect"] == "/login?next=/queue/rows"


async def test_a_rep_signs_in_sees_name_role_and_only_their_pages_then_signs_out(
    settings_for: Callable[..., Any],
) -> None:
    async with console(settings_for) as client:
        r = await sign_in(client, "rep@example.com")
        assert r.status_code == 303 and r.headers["location"] == "/queue"
        set_cookie = r.headers["set-cookie"].lower()
        assert "httponly" in set_cookie and "samesite=lax" in set_cookie
        assert client.cookies.get(SESSION_COOKIE)

        page = await client.get("/queue")
        assert page.status_code == 200
        assert '<span id="who-name">Rep</span>' in page.text
        assert '<span class="role" id="who-role">rep</span>' in page.text
        nav = re.search(r'<nav aria-label="Main">(.*?)</nav>', page.text, re.S)
        assert nav is not None
        links = re.findall(r'href="([^"]+)"', nav.group(1))
        assert links == ["/queue", "/api-docs"]
        # Routing is not reachable: the page says so instead of failing.
        assert "The queue could not be read: routing is not reachable" in page.text

        assert (await client.get("/users")).status_code == 403  # not offered, and refused

        out = await client.post("/logout", data={"csrf_token": csrf_of(page.text)})
        assert out.status_code == 303 and out.headers["location"] == "/login"
        assert not client.cookies.get(SESSION_COOKIE)
        assert (await client.get("/queue")).status_code == 303


async def test_an_admin_is_offered_dashboard_and_users_and_sees_the_users(
    settings_for: Callable[..., Any],
) -> None:
    async with console(settings_for) as client:
        r = await sign_in(client, "boss@example.com")
        assert r.status_code == 303 and r.headers["location"] == "/leads"
        page = await client.get("/users")
        assert page.status_code == 200
        assert "rep@example.com" in page.text and "boss@example.com" in page.text
        nav = re.search(r'<nav aria-label="Main">(.*?)</nav>', page.text, re.S)
        assert nav is not None
        assert re.findall(r'href="([^"]+)"', nav.group(1)) == [
            "/leads",
            "/dashboard",
            "/process",
            "/scoring",
            "/tracks",
            "/forms",
            "/imports",
            "/costs",
            "/api-keys",
            "/routing",
            "/sla",
            "/users",
            "/api-docs",
        ]


async def test_wrong_password_and_missing_csrf_are_refused_on_the_page(
    settings_for: Callable[..., Any],
) -> None:
    async with console(settings_for) as client:
        wrong = await sign_in(client, "rep@example.com", "not the password!!")
        assert wrong.status_code == 401 and "Wrong e-mail or password." in wrong.text
        assert not client.cookies.get(SESSION_COOKIE)
        assert client.cookies.get(CSRF_COOKIE)
        forged = await client.post(
            "/login", data={"username": "rep@example.com", "password": PASSWORD}
        )
        assert forged.status_code == 400 and not client.cookies.get(SESSION_COOKIE)
        # An open redirect is never followed: ?next= stays on this site.
        page = await client.get("/login")
        r = await client.post(
            "/login",
            data={
                "username": "rep@example.com",
                "password": PASSWORD,
                "csrf_token": csrf_of(page.text),
                "next": "//evil.example/",
            },
        )
        assert r.status_code == 303 and r.headers["location"] == "/queue"


async def test_pages_over_unreachable_services_say_so_and_a_rep_is_refused_marketing(
    settings_for: Callable[..., Any],
) -> None:
    async with console(settings_for) as client:
        await sign_in(client, "boss@example.com")
        for path in (
            "/leads/00000000-0000-4000-8000-000000000001",
            "/scoring",
            "/tracks",
            "/forms",
            "/dashboard",
            "/process",
        ):
            page = await client.get(path)
            assert page.status_code == 200, (path, page.text)
            assert "is not reachable" in page.text, path
        csrf = csrf_of((await client.get("/scoring")).text)
        bad = await client.post("/scoring/simulate", data={"csrf_token": csrf, "model": "{"})
        assert bad.status_code == 200 and "model: not valid JSON" in bad.text
        client.cookies.clear()
        await sign_in(client, "rep@example.com")
        assert (await client.get("/scoring")).status_code == 403
        assert (await client.get("/forms")).status_code == 403


async def test_an_admin_invites_changes_roles_resets_a_password_and_removes_a_user(
    settings_for: Callable[..., Any],
) -> None:
    async with console(settings_for) as client:
        await sign_in(client, "boss@example.com")
        csrf = csrf_of((await client.get("/users")).text)
        short = await client.post(
            "/users",
            data={"csrf_token": csrf, "email": "kim@example.com", "password": "short"},
        )
        assert short.status_code == 422 and "password" in short.text  # the API's own words
        made = await client.post(
            "/users",
            data={
                "csrf_token": csrf,
                "email": "kim@example.com",
                "name": "Kim",
                "password": PASSWORD,
                "roles": ["analyst"],
            },
        )
        assert made.status_code == 200 and "Created kim@example.com." in made.text
        users = (await client.get("/v1/users", headers=ADMIN)).json()["users"]
        kim = next(u for u in users if u["email"] == "kim@example.com")
        assert kim["roles"] == ["analyst"]

        rep_without_id = await client.post(
            f"/users/{kim['id']}/roles", data={"csrf_token": csrf, "roles": ["rep"]}
        )
        assert rep_without_id.status_code == 422 and "rep_id" in rep_without_id.text
        changed = await client.post(
            f"/users/{kim['id']}/roles",
            data={"csrf_token": csrf, "roles": ["rep", "analyst"], "rep_id": "kim"},
        )
        assert changed.status_code == 200 and "Roles changed." in changed.text
        reset = await client.post(
            f"/users/{kim['id']}/password",
            data={"csrf_token": csrf, "password": "another long password"},
        )
        assert "Password reset." in reset.text
        token = await client.post(
            "/v1/auth/token",
            data={"username": "kim@example.com", "password": "another long password"},
        )
        assert token.status_code == 200
        removed = await client.post(f"/users/{kim['id']}/delete", data={"csrf_token": csrf})
        assert "User removed." in removed.text and "kim@example.com" not in removed.text
