"""A rep's e-mail defaults to the signed-in user bound to that rep.

Notify e-mails a rep at the ``email`` of their document in routing's roster. A sales ops
admin usually binds a console user to a rep (``rep_id``) and forgets the roster's e-mail;
so when the console creates or changes such a user, and routing's rep has no e-mail yet,
the console writes the user's e-mail into the rep's document through routing's rep API.

Credential: routing's roster is admin-only, and the console holds the deployment's admin
token (``LEADFLOW_ADMIN_TOKEN``, as every service does); the call is made with it, not with
the caller's token, because the users API is open to admins of the console whose console
token routing may not trust yet. An e-mail already in the roster is never overwritten (the
roster is the manager's); a rep not in the roster yet is left alone (no document to fill).
The write is a read-then-replace (routing has no partial update): a manager's edit of the
same rep in the same instant can be lost, which is acceptable for a default. Routing being
away never fails the user's creation: the outcome is reported in ``rep_email``.
"""

from __future__ import annotations

import logging
from typing import Literal

import httpx

from leadflow.console.settings import ConsoleSettings

log = logging.getLogger("leadflow.console")
Outcome = Literal["set", "kept", "no_rep", "unavailable"]


async def default_rep_email(settings: ConsoleSettings, rep_id: str, email: str) -> Outcome:
    """Fill routing's rep ``email`` with ``email`` if it has none; say what happened."""
    url = f"{settings.console_routing_url.rstrip('/')}/v1/routing/reps/{rep_id}"
    headers = {"Authorization": f"Bearer {settings.admin_token}"}
    try:
        async with httpx.AsyncClient(timeout=5.0) as client:
            got = await client.get(url, headers=headers)
            if got.status_code == 404:
                return "no_rep"
            if not got.is_success:
                log.warning("routing refused reading rep %s: %s", rep_id, got.status_code)
                return "unavailable"
            rep = got.json()
            if rep.get("email"):
                return "kept"
            put = await client.put(url, headers=headers, json={**rep, "email": email})
            if not put.is_success:
                log.warning("routing refused rep %s's e-mail: %s", rep_id, put.text[:200])
                return "unavailable"
    except (httpx.HTTPError, ValueError) as exc:
        log.warning("routing unreachable for rep %s's e-mail: %r", rep_id, exc)
        return "unavailable"
    return "set"
