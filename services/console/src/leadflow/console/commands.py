"""The console's own actions as commands: a dataclass per action and a pure ``decide``.

A route parses the request (and hashes a password, off the event loop) into a command,
reads what the decision needs in its unit of work, asks ``decide_*`` — no I/O, no clock:
``now`` comes in the command, so every case is unit-tested with plain values
(tests/unit/console/test_console_commands.py) — carries the decision out and maps a
refusal (``CommandRefused``) to problem+json. The rules themselves (roles, throttling)
are ``domain``'s.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from leadflow.console import domain
from leadflow.console.domain import User
from leadflow.events.errors import CommandRefused


def invalid(errors: Sequence[Mapping[str, str]]) -> CommandRefused:
    fields = ", ".join(e["field"] for e in errors)
    return CommandRefused(422, "Invalid request", f"invalid fields: {fields}", errors=errors)


def unknown_user(user_id: uuid.UUID) -> CommandRefused:
    return CommandRefused(404, "Unknown user", f"no user {user_id}")


def email_taken(email: str) -> CommandRefused:
    return CommandRefused(
        409,
        "E-mail taken",
        f"a user with e-mail {email} exists",
        errors=[{"field": "email", "message": "already used by another user"}],
    )


# -- users ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CreateUser:
    email: str
    name: str
    roles: tuple[str, ...]
    rep_id: str | None


@dataclass(frozen=True, slots=True)
class ChangeUser:
    """``changes``: the fields the request set (``password_hash`` for a new password)."""

    user_id: uuid.UUID
    changes: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class DeleteUser:
    user_id: uuid.UUID


NOT_NULL = ("email", "password_hash", "roles")


def decide_create_user(cmd: CreateUser) -> tuple[str, ...]:
    """The roles the new user gets (each once, sorted); refused when roles and rep id
    cannot go together (422). A taken e-mail is the store's to find (409), atomically."""
    roles = tuple(sorted(set(cmd.roles)))
    errors = domain.role_errors(list(roles), cmd.rep_id)
    if errors:
        raise invalid(errors)
    return roles


def decide_change_user(cmd: ChangeUser, current: User | None) -> dict[str, Any]:
    """The columns to update (possibly none): refused for an unknown user (404), a field
    that may not be null (422), or roles and rep id that cannot go together (422)."""
    nulls = [f for f in NOT_NULL if f in cmd.changes and cmd.changes[f] is None]
    if nulls:
        names = {"password_hash": "password"}
        raise invalid([{"field": names.get(f, f), "message": "may not be null"} for f in nulls])
    if current is None:
        raise unknown_user(cmd.user_id)
    changes = dict(cmd.changes)
    if "roles" in changes:
        changes["roles"] = sorted(set(changes["roles"]))
    roles = changes.get("roles", list(current.roles))
    rep_id = changes.get("rep_id", current.rep_id)
    errors = domain.role_errors(list(roles), rep_id)
    if errors:
        raise invalid(errors)
    return changes


def decide_delete_user(cmd: DeleteUser, existed: bool) -> None:
    if not existed:
        raise unknown_user(cmd.user_id)


# -- sign-in -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignIn:
    """A sign-in attempt: who (``user_key``), from where (``ip_key``), when, and the
    throttle's limits (failures per user and per address within ``window``)."""

    user_key: str
    ip_key: str
    now: datetime
    window: timedelta
    max_failures: int
    ip_max_failures: int

    @property
    def keys(self) -> list[str]:
        return [self.user_key, self.ip_key]


@dataclass(frozen=True, slots=True)
class SignInOutcome:
    """What an attempt leaves behind: failures to record (a wrong password) or the user's
    failures to forget (a right one, and any row older than the window), and whether the
    token is granted."""

    granted: bool
    record_failures: tuple[str, ...] = ()
    forget_failures_of: str | None = None
    forget_before: datetime | None = None
    refusal: CommandRefused | None = field(default=None, compare=False)


def decide_sign_in_allowed(cmd: SignIn, failures: Mapping[str, Sequence[datetime]]) -> None:
    """Refused (429, ``Retry-After``) while the user or the address has failed too often
    within the window, before the password is even checked."""
    waits = [
        domain.retry_after(
            list(failures.get(cmd.user_key, ())), cmd.max_failures, cmd.window, cmd.now
        ),
        domain.retry_after(
            list(failures.get(cmd.ip_key, ())), cmd.ip_max_failures, cmd.window, cmd.now
        ),
    ]
    wait = max((w for w in waits if w is not None), default=None)
    if wait is not None:
        raise CommandRefused(
            429,
            "Too many sign-in attempts",
            "too many failed sign-ins; try again later",
            headers={"Retry-After": str(int(wait + 0.999))},
        )


def decide_sign_in(cmd: SignIn, password_matched: bool) -> SignInOutcome:
    """A wrong e-mail or password counts against the user and the address (and is refused
    with 401 after it is recorded); a right one clears the user's failures."""
    if not password_matched:
        return SignInOutcome(
            granted=False,
            record_failures=tuple(cmd.keys),
            refusal=CommandRefused(
                401,
                "Unauthorized",
                "wrong e-mail or password",
                extra={"error": "invalid_grant"},
                headers={"WWW-Authenticate": "Bearer"},
            ),
        )
    return SignInOutcome(
        granted=True, forget_failures_of=cmd.user_key, forget_before=cmd.now - cmd.window
    )
