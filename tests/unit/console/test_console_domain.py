"""The console's pure rules: user roles, token claims, sign-in throttling."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from leadflow.console.domain import User, discovery, retry_after, role_errors, token_claims

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def test_a_rep_needs_a_rep_id_and_only_a_rep_has_one() -> None:
    assert role_errors(["rep"], "jane") == []
    assert [e["field"] for e in role_errors(["rep"], None)] == ["rep_id"]
    assert [e["field"] for e in role_errors(["analyst"], "jane")] == ["rep_id"]
    assert [e["field"] for e in role_errors(["analyst", "ceo"], None)] == ["roles[1]"]
    assert role_errors(["analyst", "personal_data"], None) == []


def test_claims_carry_roles_rep_and_a_short_life() -> None:
    user = User(uuid.uuid4(), "j@example.com", "Jane", ("rep",), "jane", NOW, NOW)
    claims = token_claims(
        user, issuer="http://c", audience="leadflow", now=NOW, ttl=timedelta(minutes=15)
    )
    assert claims["exp"] - claims["iat"] == 900 and claims["aud"] == "leadflow"
    assert claims["rep_id"] == "jane" and claims["roles"] == ["rep"]
    assert claims["sub"] == str(user.user_id)
    assert "password" not in str(user.public())


def test_failures_lock_for_the_rest_of_the_window_only() -> None:
    window = timedelta(minutes=5)
    few = [NOW - timedelta(seconds=s) for s in (10, 20)]
    assert retry_after(few, 3, window, NOW) is None
    many = [NOW - timedelta(seconds=s) for s in (10, 20, 100)]
    assert retry_after(many, 3, window, NOW) == 200.0  # the oldest of the 3 leaves in 200 s
    old = [NOW - timedelta(minutes=m) for m in (6, 7, 8)]
    assert retry_after(old, 3, window, NOW) is None


def test_discovery_names_the_endpoints_under_the_issuer() -> None:
    doc = discovery("http://127.0.0.1:8000/", ["EdDSA"])
    assert doc["jwks_uri"] == "http://127.0.0.1:8000/.well-known/jwks.json"
    assert doc["token_endpoint"] == "http://127.0.0.1:8000/v1/auth/token"
