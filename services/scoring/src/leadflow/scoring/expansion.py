"""When a customer's new interest opens an expansion cycle (issue 30; pure, no I/O).

After a win the person is a customer (scoring's lead status ``won``) and its engagement counts
afresh from the win, so the interest that earned the first deal does not open the next one.
A customer opens an expansion (``expansion.opened``: the lifecycle moves it to ``inquiry``
with cycle ``expansion``, and it is qualified, routed and measured like a new buying cycle)
when it:

* raises a hand again: an inquiry (any capture) or a hand-raise activity
  (:data:`HAND_RAISE_ACTIVITIES`: a demo request, contact-sales, a trial) — ``hand_raise``;
* or engages past the model's MQL bar again (its live score, counting activity since the
  win, is MQL-ready) — ``engagement``. The model's own bar is the threshold, so marketing
  tunes one number for both cycles.

A colleague at a customer account (another person of an account one of whose people is a
customer) who raises a hand for the first time opens an expansion too (``colleague``): the
account is buying again, and its owner should hear of it as such.

A churned customer's hand-raise is a win-back: a new-business cycle, not an expansion.
"""

from __future__ import annotations

from typing import Literal

from leadflow.events.catalogue.activities import canonical_activity_type

Trigger = Literal["hand_raise", "engagement"]

# Activities that ask for sales' attention as plainly as a form does.
HAND_RAISE_ACTIVITIES: frozenset[str] = frozenset(
    {"inquiry", "demo_request", "contact_sales", "trial_signup"}
)
# Scoring's lead status of a customer (won, or back from an expansion that did not close).
CUSTOMER = "won"
CHURNED = "churned"


def is_hand_raise(activity_type: str) -> bool:
    """Whether an activity type (any spelling the catalogue knows) is a hand-raise."""
    return canonical_activity_type(activity_type) in HAND_RAISE_ACTIVITIES


def expansion_trigger(
    status: str, activity_type: str | None, mql_ready: bool | None
) -> Trigger | None:
    """What opens an expansion for a lead in ``status`` that just did ``activity_type``
    (``"inquiry"`` for an inquiry) and whose live score is now ``mql_ready`` (``None``: not
    scored yet, so only a hand-raise can open one). ``None``: nothing opens."""
    if status != CUSTOMER:
        return None
    if activity_type is not None and is_hand_raise(activity_type):
        return "hand_raise"
    if mql_ready:
        return "engagement"
    return None


def is_win_back(status: str, activity_type: str | None) -> bool:
    """A churned customer raising a hand again starts a new-business cycle."""
    return status == CHURNED and activity_type is not None and is_hand_raise(activity_type)


def colleague_opens(status: str, cycle: str, expansions: int, account_is_customer: bool) -> bool:
    """A new person at a customer account (open, new business, never expanded) opens an
    expansion with their first hand-raise."""
    return status == "open" and cycle == "new_business" and expansions == 0 and account_is_customer
