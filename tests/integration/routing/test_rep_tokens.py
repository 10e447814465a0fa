"""Reps work their own queue with their own token: their leads, as themselves, nothing else."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from leadflow.events.envelope import new_id
from leadflow.routing.domain import rep_token_digest
from leadflow.testing import produce_events, wait_until
from tests.integration.routing.test_routing_kafka import (
    AUTH,
    US,
    assignment,
    configure,
    qualified,
    routing,
    scalar,
)

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def issue(client: httpx.AsyncClient, rep_id: str) -> str:
    r = await client.post(
        f"/v1/routing/reps/{rep_id}/tokens", json={"name": "laptop"}, headers=AUTH
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["rep_id"] == rep_id and body["revoked_at"] is None
    assert body["token"].startswith(f"lfr_{body['token_id']}_")
    return str(body["token"])


async def test_a_rep_token_reads_and_acts_on_that_reps_leads_only(
    settings_for: Callable[..., Any], isolation: Any
) -> None:
    async with routing(settings_for) as client:
        await configure(client, {"a": 1, "b": 1})
        tokens = {rep: await issue(client, rep) for rep in ("a", "b")}
        lead = new_id()
        await produce_events(
            isolation.kafka_bootstrap, isolation.topic("scoring"), [qualified(lead)]
        )
        placed = await wait_until(
            lambda: assignment(client, lead), timeout=60, message="the lead is assigned"
        )
        owner = placed["rep_id"]
        other = "b" if owner == "a" else "a"
        mine, theirs = bearer(tokens[owner]), bearer(tokens[other])

        # Only a digest is stored, never the token.
        stored = await scalar(
            client, "SELECT count(*) FROM rep_tokens WHERE token_sha256 = :d",
            d=rep_token_digest(tokens[owner]),
        )  # fmt: skip
        assert stored == 1
        listed = (await client.get(f"/v1/routing/reps/{owner}/tokens", headers=AUTH)).json()
        assert [t["name"] for t in listed["tokens"]] == ["laptop"]
        assert "token" not in listed["tokens"][0]

        # Reading: one's own queue and leads.
        queue = await client.get(f"/v1/reps/{owner}/queue", headers=mine)
        assert queue.status_code == 200
        assert [item["lead_id"] for item in queue.json()["leads"]] == [str(lead)]
        assert (await client.get(f"/v1/reps/{other}/queue", headers=mine)).status_code == 403
        assert (await client.get(f"/v1/leads/{lead}/assignment", headers=mine)).status_code == 200
        peek = await client.get(f"/v1/leads/{lead}/assignment", headers=theirs)
        assert peek.status_code == 403
        assert peek.headers["content-type"] == "application/problem+json"

        # Acting: as oneself only, on one's own leads only.
        as_owner = await client.post(
            f"/v1/leads/{lead}/accept", json={"rep_id": owner}, headers=theirs
        )
        assert as_owner.status_code == 403
        assert as_owner.json()["errors"][0]["field"] == "rep_id"
        not_theirs = await client.post(f"/v1/leads/{lead}/accept", json={}, headers=theirs)
        assert not_theirs.status_code == 409, not_theirs.text
        accepted = await client.post(f"/v1/leads/{lead}/accept", json={}, headers=mine)
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["rep_id"] == owner and accepted.json()["stage"] == "sal"

        # No configuration with a rep's token.
        put = await client.put("/v1/routing/reps/c", json={"team_id": "na"}, headers=mine)
        assert put.status_code == 403
        assert (await client.get(f"/v1/reps/{owner}/queue")).status_code == 401

        # Revoked: the token stops working at once; revoking again is harmless.
        token_id = listed["tokens"][0]["token_id"]
        path = f"/v1/routing/reps/{owner}/tokens/{token_id}"
        assert (await client.delete(path, headers=AUTH)).status_code == 204
        assert (await client.delete(path, headers=AUTH)).status_code == 204
        assert (await client.get(f"/v1/reps/{owner}/queue", headers=mine)).status_code == 401
        gone = await client.delete(f"/v1/routing/reps/{owner}/tokens/nope", headers=AUTH)
        assert gone.status_code == 404
        unknown_rep = await client.post("/v1/routing/reps/zz/tokens", json={}, headers=AUTH)
        assert unknown_rep.status_code == 404

        # A rep who is removed from the roster loses their tokens with them.
        assert (await client.get(f"/v1/reps/{other}/queue", headers=theirs)).status_code == 200
        assert (await client.delete(f"/v1/routing/reps/{other}", headers=AUTH)).status_code == 204
        assert (await client.get(f"/v1/reps/{other}/queue", headers=theirs)).status_code == 401
        left = (await client.get(f"/v1/routing/reps/{other}/tokens", headers=AUTH)).json()
        assert [t["revoked_at"] is not None for t in left["tokens"]] == [True]


async def test_a_rep_cannot_act_on_a_lead_waiting_in_a_queue_that_is_not_theirs(
    settings_for: Callable[..., Any], isolation: Any
) -> None:
    """The probe's finding: a rep token could reject, recycle, hold or mark contacted a lead
    still waiting in a queue. A rep acts on a lead nobody owns only by accepting it, and only
    from a queue of their own team (or of no team)."""
    async with routing(settings_for) as client:
        await configure(client, {"a": 1})  # rep a on team na; DE/FR leads wait in "unassigned"
        token = bearer(await issue(client, "a"))
        team = await client.put("/v1/routing/teams/eu", json={"members": []}, headers=AUTH)
        assert team.status_code == 200, team.text
        put = await client.put(
            "/v1/routing/queues/unassigned", json={"name": "EU", "team_id": "eu"}, headers=AUTH
        )
        assert put.status_code == 200, put.text
        lead = new_id()
        german = US.model_copy(update={"country": "DE"})
        await produce_events(
            isolation.kafka_bootstrap, isolation.topic("scoring"), [qualified(lead, german)]
        )
        placed = await wait_until(
            lambda: assignment(client, lead), timeout=60, message="the lead is queued"
        )
        assert placed["queue_id"] == "unassigned" and placed["rep_id"] is None

        actions = {
            "reject": {"reason_code": "bad_fit"},
            "recycle": {"reason_code": "not_now"},
            "hold": {"reason": "parked"},
            "contacted": {"channel": "phone"},
            "accept": {},  # the queue is team eu's; a is on na
        }
        for action, body in actions.items():
            r = await client.post(f"/v1/leads/{lead}/{action}", json=body, headers=token)
            assert r.status_code == 403, (action, r.text)
            assert r.headers["content-type"] == "application/problem+json"
        still = await assignment(client, lead)
        assert still["stage"] == placed["stage"] and still["rep_id"] is None

        # The queue becomes team na's: a may take the lead, and then act on it as its owner.
        put = await client.put(
            "/v1/routing/queues/unassigned", json={"name": "EU", "team_id": "na"}, headers=AUTH
        )
        assert put.status_code == 200
        taken = await client.post(f"/v1/leads/{lead}/accept", json={}, headers=token)
        assert taken.status_code == 200, taken.text
        assert taken.json()["rep_id"] == "a" and taken.json()["stage"] == "sal"
        held = await client.post(f"/v1/leads/{lead}/hold", json={"reason": "x"}, headers=token)
        assert held.status_code == 200, held.text
