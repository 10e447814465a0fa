"""The console's commands decided without a database: users and sign-in."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from leadflow.console.commands import (
    ChangeUser,
    CommandRefused,
    CreateUser,
    DeleteUser,
    SignIn,
    decide_change_user,
    decide_create_user,
    decide_delete_user,
    decide_sign_in,
    decide_sign_in_allowed,
)
from leadflow.console.domain import User

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
JANE = User(uuid.uuid4(), "jane@example.com", "Jane", ("rep",), "jane", NOW, NOW)


def attempt(max_failures: int = 3, ip_max_failures: int = 10) -> SignIn:
    return SignIn(
        user_key="user:jane@example.com",
        ip_key="ip:10.0.0.1",
        now=NOW,
        window=timedelta(minutes=5),
        max_failures=max_failures,
        ip_max_failures=ip_max_failures,
    )


def test_a_new_user_gets_each_role_once_and_a_rep_needs_a_rep_id() -> None:
    roles = decide_create_user(CreateUser("a@example.com", "A", ("rep", "analyst", "rep"), "a1"))
    assert roles == ("analyst", "rep")
    with pytest.raises(CommandRefused) as refused:
        decide_create_user(CreateUser("b@example.com", "B", ("rep",), None))
    assert refused.value.status == 422
    assert [e["field"] for e in refused.value.errors] == ["rep_id"]


def test_changing_an_unknown_user_is_refused_but_a_null_field_first() -> None:
    with pytest.raises(CommandRefused) as unknown:
        decide_change_user(ChangeUser(JANE.user_id, {"name": "J"}), None)
    assert unknown.value.status == 404
    with pytest.raises(CommandRefused) as null:
        decide_change_user(ChangeUser(JANE.user_id, {"password_hash": None}), None)
    assert null.value.status == 422
    assert null.value.errors == [{"field": "password", "message": "may not be null"}]


def test_a_change_is_checked_against_the_roles_and_rep_id_it_leaves() -> None:
    with pytest.raises(CommandRefused) as refused:
        decide_change_user(ChangeUser(JANE.user_id, {"rep_id": None}), JANE)
    assert [e["field"] for e in refused.value.errors] == ["rep_id"]
    columns = decide_change_user(
        ChangeUser(JANE.user_id, {"roles": ["analyst", "analyst"], "rep_id": None}), JANE
    )
    assert columns == {"roles": ["analyst"], "rep_id": None}
    assert decide_change_user(ChangeUser(JANE.user_id, {}), JANE) == {}


def test_deleting_a_user_that_was_not_there_is_refused() -> None:
    decide_delete_user(DeleteUser(JANE.user_id), existed=True)
    with pytest.raises(CommandRefused) as refused:
        decide_delete_user(DeleteUser(JANE.user_id), existed=False)
    assert refused.value.status == 404


def test_too_many_failures_of_the_user_or_the_address_make_sign_in_wait() -> None:
    recent = [NOW - timedelta(seconds=s) for s in (10, 20, 100)]
    decide_sign_in_allowed(attempt(), {"user:jane@example.com": recent[:2]})
    with pytest.raises(CommandRefused) as user_locked:
        decide_sign_in_allowed(attempt(), {"user:jane@example.com": recent})
    assert user_locked.value.status == 429
    assert user_locked.value.headers == {"Retry-After": "200"}
    with pytest.raises(CommandRefused) as ip_locked:
        decide_sign_in_allowed(attempt(ip_max_failures=3), {"ip:10.0.0.1": recent})
    assert ip_locked.value.status == 429


def test_a_wrong_password_counts_against_user_and_address_a_right_one_clears_the_user() -> None:
    wrong = decide_sign_in(attempt(), password_matched=False)
    assert not wrong.granted
    assert wrong.record_failures == ("user:jane@example.com", "ip:10.0.0.1")
    assert wrong.refusal is not None and wrong.refusal.status == 401
    assert wrong.refusal.extra == {"error": "invalid_grant"}
    right = decide_sign_in(attempt(), password_matched=True)
    assert right.granted and right.refusal is None and not right.record_failures
    assert right.forget_failures_of == "user:jane@example.com"
    assert right.forget_before == NOW - timedelta(minutes=5)
