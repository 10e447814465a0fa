"""Who gets a lead: the rule walk (account owner, rules in order, default queue) and a
sales manager's reassignment. Pure: everything is passed in, the ``Placement`` comes back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from leadflow.events.catalogue.common import LeadSnapshot
from leadflow.routing.domain.explain import Placement, RepSkipped, RuleMissed
from leadflow.routing.domain.refused import CommandRefused
from leadflow.routing.domain.roster import Rep, Roster
from leadflow.routing.domain.rules import RuleSet
from leadflow.routing.domain.state import RoutingState, least_loaded, smooth_wrr, unavailable_reason


def pool_key(team_id: str) -> str:
    return f"team:{team_id}"


def lead_for_rules(lead: LeadSnapshot, grade: str | None = None) -> LeadSnapshot:
    """The snapshot rules match on, with the qualifying event's grade when it has none."""
    if grade and not lead.grade:
        return lead.model_copy(update={"grade": grade})
    return lead


class _Explain:
    """Collects the explanation while rules are tried, then seals it into a Placement."""

    def __init__(self, rules: RuleSet) -> None:
        self.version = rules.version
        self.missed: list[RuleMissed] = []
        self.skipped: list[RepSkipped] = []
        self._seen: set[str] = set()

    def skip(self, rep_id: str, reason: str) -> None:
        if rep_id not in self._seen:
            self._seen.add(rep_id)
            self.skipped.append(RepSkipped(rep_id, reason))

    def to_rep(
        self,
        rep: Rep,
        *,
        team_id: str | None,
        rule_id: str | None,
        method: str,
        reason: str,
        pool: str | None = None,
        pointer: Mapping[str, int] | None = None,
    ) -> Placement:
        return Placement(
            "rep",
            rep.id,
            team_id,
            None,
            rule_id,
            self.version,
            method,
            reason,
            tuple(self.missed),
            tuple(self.skipped),
            pool,
            pointer,
        )

    def to_queue(
        self,
        queue_id: str,
        *,
        team_id: str | None,
        rule_id: str | None,
        method: str,
        reason: str,
    ) -> Placement:
        return Placement(
            "queue",
            None,
            team_id,
            queue_id,
            rule_id,
            self.version,
            method,
            reason,
            tuple(self.missed),
            tuple(self.skipped),
        )


def choose_assignee(
    lead: LeadSnapshot,
    rules: RuleSet,
    roster: Roster,
    state: RoutingState,
    now: datetime,
    *,
    exclude: Iterable[str] = (),
) -> Placement:
    """Pick the owner of ``lead``: account owner, then the first rule that can place it,
    then the rule set's default queue. Never returns "nobody".

    ``exclude`` names reps that must not get it (the one who breached the SLA).
    """
    excluded = frozenset(exclude)
    ex = _Explain(rules)

    if rules.account_owner_first:
        for key in (lead.account_id, lead.account_domain):
            owner_id = roster.account_owners.get(key.lower()) if key else None
            if owner_id is None:
                continue
            owner = roster.reps.get(owner_id)
            if owner is None:
                ex.skip(owner_id, f"owner of account {key} is not a known rep")
                break
            why = unavailable_reason(owner, state, now, exclude=excluded)
            if why is None:
                return ex.to_rep(
                    owner,
                    team_id=owner.team_id,
                    rule_id=None,
                    method="account_owner",
                    reason=f"owner of account {key}",
                )
            ex.skip(owner.id, f"account owner {why}")
            break

    for rule in rules.rules:
        if not rule.enabled:
            ex.missed.append(RuleMissed(rule.id, "disabled"))
            continue
        why_not = rule.when.miss(lead)
        if why_not is not None:
            ex.missed.append(RuleMissed(rule.id, why_not))
            continue
        t = rule.target
        if t.kind == "queue":
            assert t.queue_id is not None
            q = roster.queues.get(t.queue_id)
            return ex.to_queue(
                t.queue_id,
                team_id=q.team_id if q else None,
                rule_id=rule.id,
                method="queue",
                reason=f"rule {rule.id} sends matching leads to queue {t.queue_id}",
            )
        if t.kind == "rep":
            assert t.rep_id is not None
            rep = roster.reps.get(t.rep_id)
            why = (
                "is not a known rep"
                if rep is None
                else unavailable_reason(rep, state, now, exclude=excluded)
            )
            if rep is not None and why is None:
                return ex.to_rep(
                    rep,
                    team_id=rep.team_id,
                    rule_id=rule.id,
                    method="direct",
                    reason=f"rule {rule.id} names rep {rep.id}",
                )
            ex.skip(t.rep_id, why or "unavailable")
            if rule.fallback_queue_id:
                return ex.to_queue(
                    rule.fallback_queue_id,
                    team_id=rep.team_id if rep else None,
                    rule_id=rule.id,
                    method="queue",
                    reason=f"rule {rule.id} matched but rep {t.rep_id} is unavailable ({why}): "
                    f"waiting in queue {rule.fallback_queue_id}",
                )
            ex.missed.append(RuleMissed(rule.id, f"matched, but rep {t.rep_id}: {why}"))
            continue
        # a team pool
        assert t.team_id is not None
        eligible: list[Rep] = []
        for rep in roster.team_members(t.team_id):
            if t.respect_territories and not rep.covers(lead):
                ex.skip(rep.id, f"territories {rep.territories} do not cover the lead")
                continue
            why = unavailable_reason(rep, state, now, exclude=excluded)
            if why is not None:
                ex.skip(rep.id, why)
                continue
            eligible.append(rep)
        if eligible:
            if t.strategy == "least_loaded":
                chosen = least_loaded(eligible, state, now)
                return ex.to_rep(
                    chosen,
                    team_id=t.team_id,
                    rule_id=rule.id,
                    method="least_loaded",
                    reason=f"rule {rule.id}: least loaded of {len(eligible)} eligible in team "
                    f"{t.team_id}",
                )
            key = pool_key(t.team_id)
            chosen, credits = smooth_wrr(eligible, state.pointers.get(key, {}))
            return ex.to_rep(
                chosen,
                team_id=t.team_id,
                rule_id=rule.id,
                method="round_robin",
                reason=f"rule {rule.id}: weighted round-robin over {len(eligible)} eligible "
                f"in team {t.team_id}",
                pool=key,
                pointer=credits,
            )
        team = roster.teams.get(t.team_id)
        queue_id = rule.fallback_queue_id or (team.queue_id if team else None)
        if queue_id:
            return ex.to_queue(
                queue_id,
                team_id=t.team_id,
                rule_id=rule.id,
                method="queue",
                reason=f"rule {rule.id} matched but no rep in team {t.team_id} is eligible: "
                f"waiting in queue {queue_id}",
            )
        ex.missed.append(RuleMissed(rule.id, f"matched, but no eligible rep in team {t.team_id}"))

    return ex.to_queue(
        rules.default_queue_id,
        team_id=None,
        rule_id=None,
        method="fallback",
        reason="no rule placed the lead with an available rep: default queue",
    )


class ReassignRefused(CommandRefused):
    """Why a manager's reassignment cannot happen: the field to blame and the HTTP status
    (422 the request names something that does not exist, 409 the lead's or rep's state
    forbids it now)."""

    def __init__(self, status: int, field: str, message: str) -> None:
        title = "Invalid request" if status == 422 else "Cannot reassign"
        super().__init__(status, title, message, errors=[{"field": field, "message": message}])
        self.field = field
        self.message = message


def manual_reassignment(
    *,
    in_sales: bool,
    stage: str | None,
    current_rep_id: str | None,
    rep_id: str,
    reason: str,
    roster: Roster,
    rules: RuleSet,
    state: RoutingState,
    now: datetime,
) -> Placement:
    """A sales manager hands an open lead to ``rep_id``.

    The manager names the rep, so no rule is consulted; but the rep must exist and be able
    to take a lead now (active, at work, not out of office, under their caps), the lead
    must still be with sales, and the new owner must differ from the old one, else the
    decision would record a move that did not happen. A rep the SLA excluded may be chosen:
    the manager's word overrides the automatic exclusion.
    """
    rep = roster.reps.get(rep_id)
    if rep is None:
        raise ReassignRefused(422, "rep_id", f"unknown rep {rep_id!r}")
    if not in_sales:
        raise ReassignRefused(
            409, "lead_id", f"the lead is not open with sales (stage {stage or 'unknown'})"
        )
    if current_rep_id == rep_id:
        raise ReassignRefused(409, "rep_id", f"the lead is already owned by {rep_id!r}")
    why = unavailable_reason(rep, state, now)
    if why is not None:
        raise ReassignRefused(409, "rep_id", f"rep {rep_id!r} is unavailable: {why}")
    return Placement(
        assignee_kind="rep",
        rep_id=rep.id,
        team_id=rep.team_id,
        queue_id=None,
        rule_id=None,
        rules_version=rules.version,
        method="manual",
        reason=f"reassigned by a sales manager: {reason}",
    )
