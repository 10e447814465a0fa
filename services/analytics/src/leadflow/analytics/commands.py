"""Analytics' own API actions as commands: a dataclass per action and a pure ``decide``.

Analytics changes little state of its own — the log and its projections follow the events
— but an admin enters and removes campaign costs (what ROI divides by) and an operator
rebuilds the projections. A route parses the request into a command, reads what the
decision needs in its transaction, asks ``decide_*`` (no I/O, no clock: plain values, so
every case is unit-tested in tests/unit/analytics/test_analytics_commands.py), carries the decision
out and maps a refusal (``CommandRefused``) to problem+json.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from leadflow.events.errors import CommandRefused


@dataclass(frozen=True, slots=True)
class EnteredCost:
    """A campaign cost already entered, as a decision about another one sees it."""

    cost_id: int
    period_start: date
    period_end: date


@dataclass(frozen=True, slots=True)
class EnterCampaignCost:
    """Enter what a campaign cost over some days (inclusive), in one currency."""

    campaign: str
    channel: str
    period_start: date
    period_end: date
    amount: float
    currency: str


@dataclass(frozen=True, slots=True)
class RemoveCampaignCost:
    cost_id: int


@dataclass(frozen=True, slots=True)
class RebuildProjections:
    """Clear and replay the projection ``name`` (and the rest of its fold group)."""

    name: str


def decide_enter_cost(cmd: EnterCampaignCost, same_key: Sequence[EnteredCost]) -> None:
    """One cost per campaign, channel, currency and day: a cost overlapping one already
    entered for the same campaign, channel and currency (the same invoice posted twice) is
    refused (409), not added to it. ``same_key``: the costs entered for that key."""
    if cmd.period_end < cmd.period_start:
        raise CommandRefused(
            422,
            "Invalid period",
            "period_end must not be before period_start",
            errors=[{"field": "period_end", "message": "before period_start"}],
        )
    clash = min(
        (
            c
            for c in same_key
            if c.period_start <= cmd.period_end and c.period_end >= cmd.period_start
        ),
        key=lambda c: c.cost_id,
        default=None,
    )
    if clash is not None:
        raise CommandRefused(
            409,
            "Cost already entered",
            f"cost {clash.cost_id} of campaign {cmd.campaign!r} ({cmd.channel}, "
            f"{cmd.currency}) covers {clash.period_start}..{clash.period_end}, which overlaps "
            "this period: delete it first to replace it",
            errors=[{"field": "period_start", "message": f"overlaps cost {clash.cost_id}"}],
            extra={"existing_id": clash.cost_id},
        )


def decide_remove_cost(cmd: RemoveCampaignCost, existing: EnteredCost | None) -> None:
    """A cost that is not there cannot be removed (404)."""
    if existing is None:
        raise CommandRefused(
            404,
            "Unknown cost",
            f"no campaign cost {cmd.cost_id}",
            errors=[{"field": "cost_id", "message": "not found"}],
        )


def decide_rebuild(
    cmd: RebuildProjections, known: Sequence[str], running: Sequence[str]
) -> tuple[str, ...]:
    """Which projections a rebuild of ``cmd.name`` replays: its whole group, which shares
    one fold of the log (``known``). Refused when there is no such projection (404) or a
    rebuild of the group is running (``running``: the projections being rebuilt, 409)."""
    if cmd.name not in known:
        raise CommandRefused(
            404,
            "Unknown projection",
            f"{cmd.name!r} is not a projection",
            errors=[{"field": "name", "message": f"one of {', '.join(known)}"}],
        )
    if running:
        raise CommandRefused(409, "Rebuild running", "the projections are already being rebuilt")
    return tuple(known)
