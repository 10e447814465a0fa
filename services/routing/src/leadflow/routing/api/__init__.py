"""Routing's HTTP API: the admin configuration (reps, teams, queues, account owners, rules,
reason codes, rep tokens), the dry-run simulator, sales' hand-off actions and the read views.

Callers (``Authorization: Bearer``) and what they may do are the kernel's permission table
(``leadflow.events.access``): the configuration needs ``routing.config`` (admin, sales
manager); the hand-off actions and views need ``handoff`` / ``handoff.read``, which a
sales manager and the admin token (the CRM integration relaying every rep's actions) hold
for every lead, and a rep for their own leads only: a signed-in rep (their token binds them
to a rep id) or a rep's personal token (issued by an admin, ``lfr_...``, kept working and
resolved here into the same rep principal) reads that rep's queue and leads and acts on
them as that rep, and may take a queued lead only from a queue of their team.

One module per resource: ``roster``, ``rules``, ``tokens``, ``handoff``, ``views``;
``common`` holds what they share.
"""

from fastapi import APIRouter

from leadflow.routing.api import handoff, roster, rules, tokens, views
from leadflow.routing.api.tokens import rep_token_principal

# In the order the app mounts them (the OpenAPI document lists paths in this order).
ROUTERS: tuple[APIRouter, ...] = (
    roster.router,
    rules.router,
    tokens.router,
    views.reassign_router,
    rules.rules_router,
    rules.reason_codes_router,
    handoff.router,
    views.router,
)

__all__ = ["ROUTERS", "rep_token_principal"]
