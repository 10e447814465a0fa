"""``/v1/admin/dlq``: every service's admin routes over the dead letters of the topics it
consumes (list, inspect, replay), on top of ``dlq``; mounted by ``create_service_app``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from leadflow.events.access import require_admin
from leadflow.events.deps import kit_of
from leadflow.events.dlq import (
    REPLAY_GROUP,
    DlqError,
    Position,
    list_dead_letters,
    parse_position,
    replay_dead_letters,
)
from leadflow.events.envelope import dlq_topic_for, topic_for
from leadflow.events.errors import Problem
from leadflow.events.kit import ServiceKit


class ReplayRequest(BaseModel):
    only: list[str] = Field(
        default_factory=list, description="positions <partition>:<offset> to replay (all if empty)"
    )
    dry_run: bool = False


def admin_router() -> APIRouter:
    """``/v1/admin/dlq``: the dead letters of the topics this service consumes."""
    router = APIRouter(
        prefix="/v1/admin/dlq", tags=["operations"], dependencies=[Depends(require_admin)]
    )

    def resolve(kit: ServiceKit, topic: str) -> str:
        prefix = kit.settings.topic_prefix
        for producer in kit.consumes:
            if topic in (producer, topic_for(producer, prefix), dlq_topic_for(producer, prefix)):
                return dlq_topic_for(producer, prefix)
        consumed = ", ".join(kit.consumes) or "nothing"
        raise Problem(
            404,
            "Unknown dead letter topic",
            f"{topic!r} is not a topic {kit.service} consumes (it consumes {consumed})",
            errors=[{"field": "topic", "message": "not consumed by this service"}],
        )

    def unavailable(exc: DlqError) -> Problem:
        return Problem(503, "Kafka unavailable", str(exc))

    def replay_group(kit: ServiceKit) -> str:
        return f"{kit.settings.topic_prefix}{REPLAY_GROUP}"

    @router.get("", summary="Dead letters per consumed topic (this service's consumer group)")
    async def overview(request: Request) -> dict[str, Any]:
        kit = kit_of(request)
        topics = []
        for producer in kit.consumes:
            dlq = dlq_topic_for(producer, kit.settings.topic_prefix)
            try:
                listing = await list_dead_letters(
                    kit.settings.kafka_bootstrap_servers,
                    dlq,
                    consumer_group=kit.consumer_group,
                    replay_group=replay_group(kit),
                )
            except DlqError as exc:
                raise unavailable(exc) from exc
            topics.append(
                {
                    "topic": dlq,
                    "source_topic": topic_for(producer, kit.settings.topic_prefix),
                    "count": listing.count,
                    "pending": listing.pending,
                }
            )
        return {"service": kit.service, "consumer_group": kit.consumer_group, "topics": topics}

    @router.get("/{topic}", summary="Dead letters of one topic, oldest first")
    async def entries(
        request: Request, topic: str, limit: Annotated[int, Query(ge=1, le=1000)] = 100
    ) -> dict[str, Any]:
        kit = kit_of(request)
        dlq = resolve(kit, topic)
        try:
            listing = await list_dead_letters(
                kit.settings.kafka_bootstrap_servers,
                dlq,
                consumer_group=kit.consumer_group,
                replay_group=replay_group(kit),
            )
        except DlqError as exc:
            raise unavailable(exc) from exc
        return {
            "topic": dlq,
            "count": listing.count,
            "pending": listing.pending,
            "entries": [d.detail() for d in listing.letters[:limit]],
        }

    @router.post("/{topic}/replay", summary="Re-publish dead letters to their original topic")
    async def replay(
        request: Request, topic: str, body: ReplayRequest | None = None
    ) -> dict[str, Any]:
        kit = kit_of(request)
        dlq = resolve(kit, topic)
        body = body or ReplayRequest()
        positions: list[Position] = []
        errors = []
        for i, text in enumerate(body.only):
            try:
                positions.append(parse_position(text))
            except DlqError as exc:
                errors.append({"field": f"only[{i}]", "message": str(exc)})
        if errors:
            raise Problem(422, "Invalid request", "invalid positions", errors=errors)
        try:
            report = await replay_dead_letters(
                kit.settings.kafka_bootstrap_servers,
                dlq,
                consumer_group=kit.consumer_group,
                only=positions or None,
                dry_run=body.dry_run,
                replay_group=replay_group(kit),
            )
        except DlqError as exc:
            if exc.args and str(exc.args[0]).startswith("no dead letter"):
                raise Problem(
                    404,
                    "Unknown dead letter",
                    str(exc),
                    errors=[{"field": "only", "message": str(exc)}],
                ) from exc
            raise unavailable(exc) from exc
        return report.as_dict()

    return router
