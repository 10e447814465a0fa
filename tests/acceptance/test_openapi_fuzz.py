"""Property-based fuzz of every operation of every service's OpenAPI (schemathesis).

The running platform (``e2e_stack``) is asked, operation by operation, what hypothesis
generates from each service's own ``/openapi.json``, authenticated as an automation would be
(the admin token, and intake's API key). Every answer must be no 5xx, a status the
operation documents, with the documented media type and a body matching the documented
schema (problem+json for every error). Bounded: a few examples an operation, no shrinking,
so the whole file stays well under its time budget.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

EXAMPLES = 3
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Operations whose answer is not a JSON API (text exposition, an HTML page) or that would
# end the stack under the test (none today); documented here so a skip is visible.
SKIP = {("GET", "/metrics")}


def fuzz_service(
    name: str, base_url: str, doc: dict[str, Any], headers: dict[str, str]
) -> list[str]:
    """Failures (operation: what went wrong) of one service."""
    schema = schemathesis.openapi.from_dict(doc)
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        key = (operation.method.upper(), operation.path)
        if key in SKIP:
            continue

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def run(case: Any) -> None:
            response = case.call(base_url=base_url, headers=headers, timeout=15)
            case.validate_response(response, checks=CHECKS, headers=headers)

        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:  # schemathesis' FailureGroup
            failures.append(f"{name} {key[0]} {key[1]}: {str(exc)[:600]}")
    return failures


async def test_every_operation_answers_as_documented_and_hostile_input_gets_a_4xx(
    e2e_stack: Any,
) -> None:
    stack = await e2e_stack()
    e = stack.endpoints
    services = {
        "intake": e.intake,
        "scoring": e.scoring,
        "routing": e.routing,
        "sla-monitor": e.sla,
        "analytics": e.analytics,
    }
    for name in ("console", "notify"):  # started by the stack beside the five
        url = getattr(e, name, "")
        assert url, f"the e2e stack has no {name}"
        services[name] = url
    headers = {"Authorization": f"Bearer {e.admin_token}", "X-Api-Key": e.api_key}
    started = time.monotonic()
    async with httpx.AsyncClient(timeout=30) as client:
        docs = {
            name: (await client.get(f"{url}/openapi.json")).json() for name, url in services.items()
        }
    # One service after another: hypothesis is not thread-safe.
    failures: list[str] = []
    for name, url in services.items():
        failures += await asyncio.to_thread(fuzz_service, name, url, docs[name], headers)
    took = time.monotonic() - started
    print(f"\n[fuzz] {len(services)} services in {took:.1f}s, {len(failures)} failing operations")
    assert not failures, "\n\n".join(failures)
    await hostile_probes(e)


def _fields(response: httpx.Response) -> list[str]:
    assert response.headers["content-type"] == "application/problem+json", response.text
    return [err["field"] for err in response.json().get("errors", [])]


async def hostile_probes(e: Any) -> None:
    """The crafted input the probe of the running platform answered 500 to (issue 24): each
    gets its 4xx on one keep-alive connection per service, which stays usable after."""
    admin = {"Authorization": f"Bearer {e.admin_token}"}
    key = {"X-Api-Key": e.api_key}
    async with httpx.AsyncClient(timeout=30) as c:
        r = await c.post(
            f"{e.intake}/v1/inquiries",
            headers=key,
            json={"contact": {"email": "a@acme.io", "first_name": "Ann\x00"}},
        )
        assert (r.status_code, _fields(r)) == (422, ["contact.first_name"])
        form = await c.put(
            f"{e.intake}/v1/admin/forms/probe-form",
            headers=admin,
            json={"name": "Probe", "allowed_origins": ["https://www.example.org"]},
        )
        assert form.status_code in (200, 201), form.text
        r = await c.post(
            f"{e.intake}/v1/forms/probe-form",
            headers={"Origin": "https://www.example.org", "Accept": "application/json"},
            data={"email": "b@acme.io", "comments": "hi\x00"},
        )
        assert (r.status_code, _fields(r)) == (422, ["comments"])
        r = await c.get(f"{e.analytics}/v1/sources", headers=admin, params={"campaign": "x\x00"})
        assert (r.status_code, _fields(r)) == (422, ["campaign"])
        r = await c.get(f"{e.scoring}/v1/scoring/model/versions/{2**40}", headers=admin)
        assert (r.status_code, _fields(r)) == (422, ["version"])
        r = await c.get(f"{e.routing}/v1/routing/reps", headers={**admin, "X-Pad": "p" * 65_536})
        assert r.status_code == 431

        async def chunked() -> Any:
            yield b'{"contact": {"email": "'
            for _ in range(2048):
                yield b"a" * 1024
            yield b'"}}'

        r = await c.post(
            f"{e.intake}/v1/inquiries",
            headers={**key, "content-type": "application/json"},
            content=chunked(),
        )
        assert r.status_code == 413
        # The same pooled connection still serves.
        assert (await c.get(f"{e.intake}/healthz")).status_code == 200
