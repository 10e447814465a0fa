"""Admin commands on the roster whose outcome is a decision, not just a write: removing a
rep, team or queue (refused while the configuration in force or an open lead still uses
it) and naming an account's owner (who must be a rep we know)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from leadflow.routing.domain import CommandRefused, Roster, RuleSet, users_of

RosterKind = Literal["rep", "team", "queue"]


@dataclass(frozen=True)
class RemoveFromRoster:
    kind: RosterKind
    id: str


def decide_removal(
    cmd: RemoveFromRoster, rules: RuleSet, roster: Roster, open_leads: Sequence[uuid.UUID]
) -> None:
    """Refuse (409, every use named as a field) while a rule, a team, a queue, an account or
    an open lead still needs it: deleting it would place leads nowhere."""
    uses = users_of(cmd.kind, cmd.id, rules, roster)
    if open_leads:
        uses.append(
            {
                "field": "leads",
                "message": f"{len(open_leads)} open lead(s) are with this {cmd.kind}, "
                f"e.g. {', '.join(str(x) for x in open_leads[:5])}: reassign them first",
            }
        )
    if uses:
        raise CommandRefused(
            409,
            f"{cmd.kind.capitalize()} in use",
            f"{cmd.kind} {cmd.id!r} is in use: "
            + "; ".join(f"{u['field']}: {u['message']}" for u in uses),
            errors=uses,
        )


@dataclass(frozen=True)
class SetAccountOwner:
    account_key: str
    rep_id: str


def decide_account_owner(cmd: SetAccountOwner, roster: Roster) -> str:
    """The account key as stored (lower case); refused (422 ``rep_id``) for an unknown rep."""
    if cmd.rep_id not in roster.reps:
        raise CommandRefused.invalid("rep_id", "unknown rep", detail=f"unknown rep {cmd.rep_id!r}")
    return cmd.account_key.lower()
