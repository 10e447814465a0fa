"""The versioned-document mechanism (``leadflow.events.documents`` and ``document_routes``)
against a real Postgres: a publish stores the next version and its event goes out through the
outbox in the same transaction; two publishers racing for one number: one wins, the other
gets a 409 naming the version; a replica's cache sees another replica's publish; the routes
answer problem+json naming the field."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field

from leadflow.events.access import Permission
from leadflow.events.catalogue.scoring import ScoringModelPublished
from leadflow.events.document_routes import document_router
from leadflow.events.documents import Document, DocumentKind, FieldErrors
from leadflow.events.errors import Problem
from leadflow.events.kit import ServiceKit
from leadflow.events.service import create_service_app
from leadflow.events.sql import Tx
from leadflow.testing import app_client, wait_until

from .probe import ProbeSettings, make_kit

pytestmark = [pytest.mark.postgres]
AUTH = {"Authorization": "Bearer test-admin-token"}


class Greeting(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=50)
    tone: Literal["warm", "dry"] = "warm"


async def greeting_published(conn: Tx, doc: Document[Any]) -> ScoringModelPublished:
    return ScoringModelPublished(
        model_version=doc.version, model=doc.doc.model_dump(), published_by=doc.published_by
    )


async def no_shouting(conn: Tx, greeting: Any) -> FieldErrors:
    if greeting.text.isupper():
        return [{"field": "text", "message": "no shouting"}]
    return []


GREETINGS = DocumentKind(
    name="probe-greeting",
    table="probe_documents",
    model=Greeting,
    event=greeting_published,
    title="greeting",
    builtin=lambda: Greeting(text="hello"),
    check=no_shouting,
)


@pytest.fixture
async def kits(settings_for: Any) -> AsyncIterator[tuple[ServiceKit, ServiceKit]]:
    """Two replicas of one service: two kits on one schema."""
    first = make_kit(settings_for(ProbeSettings, run_consumers=False))
    second = make_kit(settings_for(ProbeSettings, run_consumers=False))
    await first.start()
    await second.start()
    try:
        yield first, second
    finally:
        await second.stop()
        await first.stop()


async def test_publish_stores_the_next_version_and_its_event_in_the_outbox(
    kits: tuple[ServiceKit, ServiceKit],
) -> None:
    kit, _ = kits
    async with kit.connect() as conn:
        builtin = await GREETINGS.current(conn)
    assert (builtin.version, builtin.source, builtin.doc.text) == (0, "built-in", "hello")

    outbox = (
        "SELECT e.event_type, e.payload->>'model_version' FROM event_log e "
        "JOIN outbox o USING (event_id) WHERE e.lead_id = :s"
    )
    async with kit.unit_of_work() as uow:
        first = await GREETINGS.publish(uow, Greeting(text="hi"), published_by="ops", note="v1")
        await uow.flush()
        # the event is in the outbox in the publish's own transaction
        rows = await uow.tx.fetch(outbox, s=GREETINGS.stream)
        assert [tuple(r) for r in rows] == [("scoring.model_published", "1")]
    async with kit.unit_of_work() as uow:
        second = await GREETINGS.publish(uow, Greeting(text="hey", tone="dry"))
    assert (first.version, second.version) == (1, 2)

    async with kit.connect() as conn:
        current = await GREETINGS.current(conn)
        assert (current.version, current.doc.tone, current.source) == (2, "dry", "published")
        old = await GREETINGS.version(conn, 1)
        assert old is not None and (old.doc.text, old.published_by, old.note) == ("hi", "ops", "v1")
        assert (await GREETINGS.version(conn, 0)) == builtin
        assert await GREETINGS.version(conn, 9) is None
        assert [v["version"] for v in await GREETINGS.versions(conn)] == [2, 1]
        events = await kit.store.read_stream(conn, GREETINGS.stream)
    assert [e.payload.model_version for e in events] == [1, 2]  # type: ignore[attr-defined]


async def test_publish_and_event_roll_back_together(kits: tuple[ServiceKit, ServiceKit]) -> None:
    kit, _ = kits
    with pytest.raises(RuntimeError):
        async with kit.unit_of_work() as uow:
            await GREETINGS.publish(uow, Greeting(text="never"))
            raise RuntimeError("the rest of the command failed")
    async with kit.connect() as conn:
        assert (await GREETINGS.current(conn)).version == 0
        assert await conn.fetchval("SELECT count(*) FROM event_log") == 0


async def test_two_publishers_racing_one_wins_the_other_gets_409_naming_the_version(
    kits: tuple[ServiceKit, ServiceKit],
) -> None:
    first_kit, second_kit = kits
    async with first_kit.unit_of_work() as winner:
        await GREETINGS.publish(winner, Greeting(text="winner"))

        async def loser() -> Problem:
            async with second_kit.unit_of_work() as uow:
                pid = await uow.tx.fetchval("SELECT pg_backend_pid()")
                pids.set_result(pid)
                with pytest.raises(Problem) as refused:
                    await GREETINGS.publish(uow, Greeting(text="loser"))
            return refused.value

        pids: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        racing = asyncio.create_task(loser())
        pid = await pids
        async with first_kit.connect() as watch:
            # the loser took the same number and waits on the winner's uncommitted row
            await wait_until(
                lambda: watch.fetchval("SELECT pg_blocking_pids(:p) <> '{}'", p=pid),
                message="the second publisher never blocked on the first",
            )
    problem = await racing
    assert problem.status == 409
    assert problem.extra["current_version"] == 1
    assert "version 1" in problem.detail
    async with first_kit.connect() as conn:
        current = await GREETINGS.current(conn)
        assert (current.version, current.doc.text) == (1, "winner")
        assert len(await GREETINGS.versions(conn)) == 1


async def test_a_replicas_cache_sees_another_replicas_publish(
    kits: tuple[ServiceKit, ServiceKit],
) -> None:
    reader, publisher = kits
    async with publisher.unit_of_work() as uow:
        await GREETINGS.publish(uow, Greeting(text="one"))
    async with reader.connect() as conn:
        cached = await GREETINGS.current(conn)
        assert await GREETINGS.current(conn) is cached  # parsed once, then from the cache
    async with publisher.unit_of_work() as uow:
        await GREETINGS.publish(uow, Greeting(text="two"))
    async with reader.connect() as conn:
        seen = await GREETINGS.current(conn)
    assert (seen.version, seen.doc.text) == (2, "two")


async def test_routes_publish_read_and_refuse_naming_the_field(
    kits: tuple[ServiceKit, ServiceKit],
) -> None:
    kit, _ = kits
    app = create_service_app(
        kit,
        document_router(
            GREETINGS,
            path="/v1/greeting",
            read=Permission.SCORING_MODEL,
            publish=Permission.SCORING_MODEL,
        ),
        title="probe",
    )
    async with app_client(app) as client:
        r = await client.get("/v1/greeting", headers=AUTH)
        assert r.status_code == 200 and r.headers["etag"] == '"0"'
        assert r.json() | {"published_at": None} == {
            "text": "hello",
            "tone": "warm",
            "version": 0,
            "source": "built-in",
            "published_by": None,
            "published_at": None,
            "note": None,
        }
        assert (await client.put("/v1/greeting", json={"text": "x"})).status_code == 401

        bad = await client.put("/v1/greeting", json={"text": "", "tone": "loud"}, headers=AUTH)
        assert bad.status_code == 422
        assert bad.headers["content-type"].startswith("application/problem+json")
        assert {e["field"] for e in bad.json()["errors"]} == {"text", "tone"}
        shouting = await client.put("/v1/greeting", json={"text": "HI"}, headers=AUTH)
        assert shouting.status_code == 422 and shouting.json()["errors"][0]["field"] == "text"

        published = await client.put(
            "/v1/greeting",
            json={"text": "hi", "version": 7, "note": "first"},
            headers={**AUTH, "X-Published-By": "ops", "If-Match": '"0"'},
        )
        assert published.status_code == 201, published.text
        assert published.headers["location"] == "/v1/greeting/versions/1"
        body = published.json()
        assert (body["version"], body["published_by"], body["note"]) == (1, "ops", "first")

        stale = await client.put(
            "/v1/greeting", json={"text": "late"}, headers={**AUTH, "If-Match": '"0"'}
        )
        assert stale.status_code == 409
        assert stale.headers["content-type"].startswith("application/problem+json")
        assert stale.json()["current_version"] == 1

        listing = (await client.get("/v1/greeting/versions", headers=AUTH)).json()
        assert [(v["version"], v["published_by"]) for v in listing["versions"]] == [(1, "ops")]
        assert (await client.get("/v1/greeting/versions/1", headers=AUTH)).json()["text"] == "hi"
        assert (await client.get("/v1/greeting/versions/0", headers=AUTH)).json()["version"] == 0
        missing = await client.get("/v1/greeting/versions/9", headers=AUTH)
        assert missing.status_code == 404
