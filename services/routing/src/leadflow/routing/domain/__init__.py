"""Routing decisions: who gets a qualified lead, and why. Pure: no I/O, no clock.

Everything the decision needs is passed in (the roster of reps/teams/queues/account
owners, the published rule set, the load and round-robin pointer state, ``now``), and
everything it changes comes back in the ``Placement`` (the pointer state to persist), so
two replicas reading the same state from the database make the same choice.

The pieces: ``roster`` (who can take leads), ``rules`` (where leads go), ``state`` (loads,
counts, credits; availability), ``lead`` (a lead as routing knows it), ``explain`` (the decision and its reasons), ``decide`` (the
rule walk and a manager's reassignment), ``tokens`` (reps' personal tokens), ``refused``
(why a command cannot happen).
"""

from leadflow.routing.domain.decide import (
    ReassignRefused,
    choose_assignee,
    lead_for_rules,
    manual_reassignment,
    pool_key,
)
from leadflow.routing.domain.explain import Placement, RepSkipped, RuleMissed
from leadflow.routing.domain.hours import LegacyWindow, working_hours_of
from leadflow.routing.domain.lead import SALES_OPEN_STAGES, LeadRow
from leadflow.routing.domain.refused import CommandRefused
from leadflow.routing.domain.roster import OutOfOffice, Queue, Rep, Roster, Team, team_queue_ids
from leadflow.routing.domain.rules import (
    Conditions,
    Rule,
    RuleSet,
    Target,
    check_references,
    users_of,
)
from leadflow.routing.domain.state import (
    LiveState,
    RoutingState,
    least_loaded,
    smooth_wrr,
    unavailable_reason,
)
from leadflow.routing.domain.tokens import (
    REP_TOKEN_PREFIX,
    looks_like_rep_token,
    new_rep_token,
    rep_token_digest,
)

__all__ = [
    "REP_TOKEN_PREFIX",
    "SALES_OPEN_STAGES",
    "CommandRefused",
    "Conditions",
    "LeadRow",
    "LegacyWindow",
    "LiveState",
    "OutOfOffice",
    "Placement",
    "Queue",
    "ReassignRefused",
    "Rep",
    "RepSkipped",
    "Roster",
    "RoutingState",
    "Rule",
    "RuleMissed",
    "RuleSet",
    "Target",
    "Team",
    "check_references",
    "choose_assignee",
    "lead_for_rules",
    "least_loaded",
    "looks_like_rep_token",
    "manual_reassignment",
    "new_rep_token",
    "pool_key",
    "rep_token_digest",
    "smooth_wrr",
    "team_queue_ids",
    "unavailable_reason",
    "users_of",
    "working_hours_of",
]
