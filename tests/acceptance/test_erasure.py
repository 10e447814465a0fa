"""Erasure is complete: after ``DELETE /v1/leads/{id}`` nothing the person or a rep wrote
about them is left in any table of any service.

A person browses anonymously, downloads content, fills an inquiry (name, e-mail, phone,
notes, comments, an anonymous id); a rep accepts and contacts them, writing notes, and puts
the lead on hold with a reason typed in. Every one of those fields carries a marker. The test proves the scan sees the marker before the
erasure (in the services' logs and read tables), then erases the lead through intake's
public API and scans every text, JSON and array column of every table of every service's
schema until none holds it. Event logs stay (counts, funnel): what goes is the personal
text, crypto-shredded or held beside the log and deleted (docs/erasure.md).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx

from leadflow.events.db import plain_url
from leadflow.testing import wait_until

# Column types whose values are text a person could have typed (or hold it: JSON, arrays).
_SCANNED = ("text", "character varying", "character", "json", "jsonb", "ARRAY")


async def marker_hits(database_url: str, schema_prefix: str, markers: list[str]) -> list[str]:
    """``schema.table.column`` of every value that contains one of the markers."""
    conn = await asyncpg.connect(plain_url(database_url))
    try:
        columns = await conn.fetch(
            """
            SELECT c.table_schema, c.table_name, c.column_name
            FROM information_schema.columns c
            JOIN information_schema.tables t
              ON t.table_schema = c.table_schema AND t.table_name = c.table_name
            WHERE c.table_schema LIKE $1 AND t.table_type = 'BASE TABLE'
              AND c.data_type = ANY($2::text[])
            ORDER BY 1, 2, 3
            """,
            f"{schema_prefix}%",
            list(_SCANNED),
        )
        hits = []
        for schema, table, column in columns:
            found = await conn.fetchval(
                f'SELECT count(*) FROM "{schema}"."{table}" '
                f'WHERE "{column}"::text ILIKE ANY($1::text[])',
                [f"%{m}%" for m in markers],
            )
            if found:
                hits.append(f"{schema.removeprefix(schema_prefix)}.{table}.{column}")
        return hits
    finally:
        await conn.close()


def _now() -> str:
    return datetime.now(UTC).isoformat()


async def test_erased_lead_leaves_no_personal_text_in_any_table(e2e_stack: Any, isolation) -> None:
    stack = await e2e_stack()
    e = stack.endpoints
    mark = f"zq{uuid.uuid4().hex[:10]}"
    phone_digits = f"415555{uuid.uuid4().int % 10_000:04d}"
    markers = [mark, phone_digits]
    email = f"ann.{mark}@acme{uuid.uuid4().hex[:6]}.com"  # the domain is the company's
    admin = {"Authorization": f"Bearer {e.admin_token}"}
    key = {"X-Api-Key": e.api_key}
    prefix = f"{isolation.schema}_"

    async with httpx.AsyncClient(timeout=30, headers=admin) as client:  # reports need one

        async def ok(method: str, url: str, **kwargs: Any) -> httpx.Response:
            r = await client.request(method, url, **kwargs)
            assert r.status_code < 300, f"{method} {url}: {r.status_code} {r.text[:500]}"
            return r

        # The sales roster a lead is routed to (setup any Leadflow user does).
        await ok("PUT", f"{e.routing}/v1/routing/queues/q1", headers=admin, json={"name": "Q"})
        await ok("PUT", f"{e.routing}/v1/routing/reps/r1", headers=admin, json={"name": "Rep"})
        await ok(
            "PUT",
            f"{e.routing}/v1/routing/teams/t1",
            headers=admin,
            json={"name": "t1", "members": ["r1"], "queue_id": "q1"},
        )
        await ok(
            "POST",
            f"{e.routing}/v1/routing/rules",
            headers=admin,
            json={
                "rules": [
                    {
                        "id": "all",
                        "target": {
                            "kind": "team",
                            "team_id": "t1",
                            "strategy": "round_robin",
                            "respect_territories": False,
                        },
                    }
                ],
                "default_queue_id": "q1",
                "published_by": "erasure test",
            },
        )

        anonymous_id = f"anon-{mark}"
        activity = {
            "url": f"https://www.leadflow-demo.com/pricing?ref={mark}",
            "properties": {"search": f"pricing {mark}"},
        }
        await ok(
            "POST",
            f"{e.intake}/v1/activities",
            headers=key,
            json={
                "items": [
                    {
                        "type": "page_view",
                        "occurred_at": _now(),
                        "anonymous_id": anonymous_id,
                        **activity,
                    },
                    {
                        "type": "content_download",
                        "occurred_at": _now(),
                        "email": email,
                        "content_id": "buyers-guide",
                        **activity,
                    },
                ]
            },
        )
        captured = await ok(
            "POST",
            f"{e.intake}/v1/inquiries",
            headers=key,
            json={
                "contact": {
                    "email": email,
                    "first_name": f"Ann{mark}",
                    "last_name": f"Lee{mark}",
                    "phone": f"+1 {phone_digits[:3]} {phone_digits[3:6]} {phone_digits[6:]}",
                    "title": "VP of Sales",
                    "department": "Sales",
                    "company": "Acme Corp",
                    "industry": "Software",
                    "country": "United States",
                },
                "source": {"channel": "paid_search", "utm_source": "google"},
                "answers": {
                    "compelling_event": f"contract renewal {mark}",
                    "authority": "yes",
                    "timeframe": "this quarter",
                    "budget": "50k",
                    "company_size": "1000+",
                    "comments": f"call me after five {mark}",
                },
                "notes": f"met at the booth {mark}",
                "anonymous_id": anonymous_id,
            },
        )
        lead_id = captured.json()["lead_id"]

        async def in_rep_queue() -> bool:
            r = await client.get(f"{e.routing}/v1/reps/r1/queue", headers=admin)
            return r.status_code == 200 and lead_id in r.text

        await wait_until(in_rep_queue, timeout=90, message="lead routed to the rep")
        await ok(
            "POST",
            f"{e.routing}/v1/leads/{lead_id}/accept",
            headers=admin,
            json={"rep_id": "r1", "note": f"sounds keen {mark}"},
        )
        await ok(
            "POST",
            f"{e.routing}/v1/leads/{lead_id}/contacted",
            headers=admin,
            json={"rep_id": "r1", "channel": "phone", "note": f"left a voicemail {mark}"},
        )
        await ok(
            "POST",
            f"{e.routing}/v1/leads/{lead_id}/hold",
            headers=admin,
            json={"rep_id": "r1", "reason": f"call back after parental leave {mark}"},
        )

        # The scan sees what it looks for: every service that was told holds the marker.
        async def everywhere() -> list[str]:
            hits = await marker_hits(isolation.database_url, prefix, markers)
            services = {h.split(".")[0] for h in hits}
            return hits if {"intake", "routing", "analytics"} <= services else []

        before = await wait_until(everywhere, timeout=90, message="markers stored")
        print("\n[erasure] before:", before)

        await ok(
            "DELETE",
            f"{e.intake}/v1/leads/{lead_id}",
            headers=admin,
            params={"reason": "GDPR art. 17 request"},
        )

        remaining: list[str] = []

        async def gone() -> bool:
            nonlocal remaining
            remaining = await marker_hits(isolation.database_url, prefix, markers)
            return not remaining

        try:
            await wait_until(gone, timeout=90, message="personal text erased")
        except AssertionError:
            raise AssertionError(f"the marker survives erasure in {remaining}") from None

        # The facts stay: the lead is still there, its profile says it was erased.
        profile = await ok("GET", f"{e.intake}/v1/leads/{lead_id}", headers=admin)
        assert profile.json()["erased"] is True
