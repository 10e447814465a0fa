"""Lead search (the console's /leads) on the scripted history of ``scenario``: by e-mail,
name or company, with stage, grade, channel and owner filters and paging; an erased
person is never found by name."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from leadflow.analytics.app import create_app
from leadflow.analytics.settings import AnalyticsSettings
from leadflow.events.catalogue.scoring import LeadQualified
from leadflow.events.clock import ManualClock
from leadflow.testing import app_client, wait_until
from tests.integration.analytics import scenario as sc

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
ADMIN = {"Authorization": "Bearer test-admin-token"}
NAME = {str(lead_id): name for name, lead_id in sc.LEADS.items()}


@pytest.fixture
async def client(settings_for: Any, isolation: Any) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings_for(AnalyticsSettings), clock=ManualClock(sc.NOW))
    async with app_client(app) as c:
        c.headers.update(ADMIN)
        await sc.load(isolation, sc.envelopes())
        await wait_until(lambda: sc.caught_up(c), timeout=60, message="projections caught up")
        yield c


async def found(client: httpx.AsyncClient, **params: Any) -> tuple[list[str], int]:
    r = await client.get("/v1/leads/search", params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    return [NAME[i["lead_id"]] for i in body["items"]], body["total"]


async def test_search_by_text_filters_and_pages(client: httpx.AsyncClient) -> None:
    assert await found(client, q="l2@EXAMPLE") == (["L2"], 1)
    names, total = await found(client, q="L")  # first names L1..L6; L4 was erased
    assert sorted(names) == ["L1", "L2", "L3", "L5", "L6"] and total == 5
    assert await found(client, q="%") == ([], 0)  # a typed % is a %, not a wildcard

    assert await found(client, stage="won") == (["L1"], 1)
    names, _ = await found(client, channel="badge_scan")
    assert sorted(names) == ["L3", "L4"]
    qualified = {lead for lead, _h, p in sc.history() if isinstance(p, LeadQualified)}
    names, _ = await found(client, grade="A")
    assert sorted(names) == sorted(qualified)
    r2 = (await client.get("/v1/leads/search", params={"rep_id": "r2"})).json()["items"]
    assert r2 and all(i["rep_id"] == "r2" for i in r2) and "L3" in {NAME[i["lead_id"]] for i in r2}

    first, total = await found(client, q="L", limit=2)
    rest, _ = await found(client, q="L", limit=2, offset=2)
    last, _ = await found(client, q="L", limit=2, offset=4)
    assert total == 5 and len(first) == 2 and len(rest) == 2 and len(last) == 1
    assert sorted(first + rest + last) == ["L1", "L2", "L3", "L5", "L6"]

    l1 = (await client.get("/v1/leads/search", params={"q": "l1@"})).json()["items"][0]
    assert l1["contact"]["email"] == "l1@example.com" and l1["matrix_cell"] == "A1"
    bad = await client.get("/v1/leads/search", params={"limit": 0})
    assert bad.status_code == 422 and "limit" in bad.text
