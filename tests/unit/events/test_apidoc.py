"""Every operation of every service documents its error answers as problem+json."""

from __future__ import annotations

import importlib

import pytest

SERVICES = ["intake", "scoring", "routing", "sla_monitor", "analytics", "console", "notify"]


@pytest.mark.parametrize("service", SERVICES)
def test_every_error_answer_is_documented_as_a_problem(service: str) -> None:
    doc = importlib.import_module(f"leadflow.{service}.app").create_app().openapi()
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    assert doc["components"]["schemas"]["Problem"]["required"] == ["type", "title", "status"]
    for path, item in doc["paths"].items():
        for method, op in item.items():
            codes = {int(c) for c in op["responses"] if c.isdigit()}
            where = f"{method.upper()} {path}"
            assert {431, 503} <= codes, where
            if "{" in path:
                assert 404 in codes, where
            if op.get("parameters") or op.get("requestBody"):
                assert 422 in codes, where
            if op.get("requestBody"):
                assert {400, 413, 415} <= codes, where
            for code in codes:
                if code >= 400:
                    content = op["responses"][str(code)]["content"]
                    assert list(content) == ["application/problem+json"], (where, code)


def test_credentialed_routes_document_401_and_403() -> None:
    doc = importlib.import_module("leadflow.routing.app").create_app().openapi()
    accept = doc["paths"]["/v1/leads/{lead_id}/accept"]["post"]["responses"]
    assert {"401", "403", "404", "409", "422"} <= set(accept)
    health = doc["paths"]["/healthz"]["get"]["responses"]
    assert "401" not in health
