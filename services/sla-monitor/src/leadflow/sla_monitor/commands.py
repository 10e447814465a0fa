"""sla-monitor's admin actions as commands: a dataclass per action, a pure ``decide`` per
action, and ``run`` to carry one out in a unit of work.

A route parses the request into a command (``PutPolicy``, ``DeletePolicy``, ``PutCalendar``,
``DeleteCalendar``), ``run`` reads what the decision needs in the command's transaction
(the policy set in force, the calendars), the ``decide_*`` function says what happens or
refuses (``CommandRefused``: the status, title and fields the API answers with), and ``run``
writes it: a policy change publishes the next policy-set version (``store.POLICIES``, with
the version decided on as ``If-Match``, so a concurrent publish is a 409, never lost). The
decisions take plain values and are unit-tested without a database
(tests/unit/sla_monitor/test_sla_commands.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from leadflow.events.calendar import BusinessCalendar
from leadflow.events.documents import Document
from leadflow.events.errors import CommandRefused
from leadflow.events.uow import UnitOfWork
from leadflow.sla_monitor import store
from leadflow.sla_monitor.domain import DEFAULT_CALENDAR_ID, SlaPolicy

# -- policies ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PutPolicy:
    """Create or replace one policy of the set (the path names it, the body is it)."""

    policy_id: str
    policy: SlaPolicy
    published_by: str | None = None


@dataclass(frozen=True)
class DeletePolicy:
    """Remove one policy from the set."""

    policy_id: str
    published_by: str | None = None


@dataclass(frozen=True)
class PolicySetChange:
    """The whole next set to publish, and whether the command created its policy."""

    policies: list[SlaPolicy]
    edited_version: int
    created: bool = False


def decide_put_policy(
    cmd: PutPolicy, policies: Sequence[SlaPolicy], version: int, calendar_ids: set[str]
) -> PolicySetChange:
    """The set with ``cmd.policy`` in place of the policy of that id (appended when new).

    Refused (422) when the body's id is not the path's or it names an unknown calendar."""
    if cmd.policy.policy_id != cmd.policy_id:
        raise CommandRefused(
            422,
            "Invalid policy",
            "the body's policy_id must match the path",
            [{"field": "policy_id", "message": f"expected {cmd.policy_id!r}"}],
        )
    if errors := store.policy_errors([cmd.policy], calendar_ids, ""):
        fields = ", ".join(e["field"] for e in errors)
        raise CommandRefused(422, "Invalid policy", f"invalid fields: {fields}", errors)
    existed = any(p.policy_id == cmd.policy_id for p in policies)
    out = [cmd.policy if p.policy_id == cmd.policy_id else p for p in policies]
    if not existed:
        out.append(cmd.policy)
    return PolicySetChange(out, version, created=not existed)


def decide_delete_policy(
    cmd: DeletePolicy, policies: Sequence[SlaPolicy], version: int
) -> PolicySetChange:
    """The set without the policy; refused (404) when the set has no such policy."""
    remaining = [p for p in policies if p.policy_id != cmd.policy_id]
    if len(remaining) == len(policies):
        raise CommandRefused(404, "Not Found", f"no policy {cmd.policy_id!r} in version {version}")
    return PolicySetChange(remaining, version)


# -- calendars -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PutCalendar:
    """Create or replace a business calendar."""

    calendar_id: str
    calendar: BusinessCalendar


@dataclass(frozen=True)
class DeleteCalendar:
    """Delete a business calendar no policy uses (the default one stays)."""

    calendar_id: str


def decide_put_calendar(cmd: PutCalendar) -> BusinessCalendar:
    """The calendar to store; refused (422) when the body's id is not the path's."""
    if cmd.calendar.calendar_id != cmd.calendar_id:
        raise CommandRefused(
            422,
            "Invalid calendar",
            "the body's calendar_id must match the path",
            [{"field": "calendar_id", "message": f"expected {cmd.calendar_id!r}"}],
        )
    return cmd.calendar


def decide_delete_calendar(cmd: DeleteCalendar, policies: Sequence[SlaPolicy]) -> None:
    """Refused (409) for the default calendar and for one a policy of the set uses."""
    if cmd.calendar_id == DEFAULT_CALENDAR_ID:
        raise CommandRefused(
            409,
            "Conflict",
            "the default calendar can be replaced but not deleted",
            [{"field": "calendar_id", "message": "is the default calendar"}],
        )
    users = [p.policy_id for p in policies if p.calendar_id == cmd.calendar_id]
    if users:
        raise CommandRefused(
            409,
            "Conflict",
            f"calendar {cmd.calendar_id!r} is used by policies {users}",
            [{"field": "calendar_id", "message": "in use"}],
        )


# -- carrying a command out ----------------------------------------------------------------


@dataclass(frozen=True)
class Done:
    """What a command did: ``created`` (201 rather than 200), the published policy set."""

    created: bool = False
    published: Document[store.PolicySetDoc] | None = None


Command = PutPolicy | DeletePolicy | PutCalendar | DeleteCalendar


async def run(uow: UnitOfWork, cmd: Command) -> Done:
    """Read what ``cmd``'s decision needs in ``uow``'s transaction, decide, write.

    Raises ``CommandRefused``; the caller's unit of work then rolls back."""
    if isinstance(cmd, PutCalendar):
        created = await store.put_calendar(uow.tx, decide_put_calendar(cmd))
        return Done(created=created)
    current = await store.current_policy_set(uow.tx)
    if isinstance(cmd, DeleteCalendar):
        decide_delete_calendar(cmd, current.policies)
        if not await store.delete_calendar(uow.tx, cmd.calendar_id):
            raise CommandRefused(404, "Not Found", f"no calendar {cmd.calendar_id!r}")
        return Done()
    if isinstance(cmd, PutPolicy):
        calendar_ids = set(await store.calendars(uow.tx))
        change = decide_put_policy(cmd, current.policies, current.version, calendar_ids)
    else:
        change = decide_delete_policy(cmd, current.policies, current.version)
    document = await store.POLICIES.publish(
        uow,
        store.PolicySetDoc(policies=change.policies),
        published_by=cmd.published_by,
        expected=change.edited_version,
    )
    return Done(created=change.created, published=document)
