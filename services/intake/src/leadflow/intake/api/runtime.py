"""Intake's per-app runtime (settings, batcher, caches, rate limiters) and the helpers every
route shares: rate-limit answers, the retried unit of work, problem bodies for bad input.

Kept apart from the routes so each resource's module reads as its own HTTP surface.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from fastapi import Request
from pydantic import ValidationError

from leadflow.events import ServiceKit, UnitOfWork
from leadflow.events.errors import ConcurrencyError, Problem, UniqueViolation
from leadflow.intake.batching import InquiryBatcher
from leadflow.intake.domain import HygieneError, InquiryDraft
from leadflow.intake.schemas import (
    FormIn,
    InquiryIn,
)
from leadflow.intake.security import (
    KeyCache,
    RateLimiter,
    TtlCache,
)
from leadflow.intake.settings import IntakeSettings

T = TypeVar("T")


# ---------------------------------------------------------------------------------------
# Runtime state (per app, never at import time)


@dataclass
class Runtime:
    settings: IntakeSettings
    key_limiter: RateLimiter
    ip_limiter: RateLimiter
    keys: KeyCache
    forms: TtlCache[FormIn | None]
    batcher: InquiryBatcher
    imports: dict[uuid.UUID, asyncio.Task[None]] = field(default_factory=dict)

    @classmethod
    def build(cls, settings: IntakeSettings, kit: ServiceKit) -> Runtime:
        return cls(
            settings,
            RateLimiter(settings.intake_key_rate_per_second, settings.intake_key_burst),
            RateLimiter(settings.intake_ip_rate_per_second, settings.intake_ip_burst),
            KeyCache(settings.intake_api_key_cache_seconds),
            TtlCache(settings.intake_api_key_cache_seconds),
            InquiryBatcher(
                lambda work: in_transaction(kit, work),
                max_batch=settings.intake_group_commit_max,
                concurrency=settings.intake_group_commit_transactions,
                interval=settings.intake_group_commit_interval_ms / 1000,
            ),
        )


def runtime(kit: ServiceKit[Runtime]) -> Runtime:
    return kit.state


def refuse_oversized_batch(settings: IntakeSettings, size: int, noun: str) -> None:
    """A 413 naming ``items`` for a batch over ``LEADFLOW_INTAKE_MAX_BATCH_ITEMS`` (scans and
    activities share the limit)."""
    if size > settings.intake_max_batch_items:
        raise Problem(
            413,
            "Batch too large",
            f"at most {settings.intake_max_batch_items} {noun} per request",
            errors=[{"field": "items", "message": "too many items"}],
        )


def client_ip(request: Request, settings: IntakeSettings) -> str:
    if settings.intake_trust_forwarded_for:
        forwarded = request.headers.get("x-forwarded-for")
        if forwarded:
            return forwarded.split(",")[0].strip()
    return request.client.host if request.client else "unknown"


def _limit(limiter: RateLimiter, subject: str, what: str) -> None:
    retry = limiter.check(subject)
    if retry is not None:
        seconds = max(1, int(retry + 0.999))
        raise Problem(
            429,
            "Too many requests",
            f"rate limit per {what} exceeded; retry later",
            errors=[{"field": what, "message": f"retry after {seconds}s"}],
            headers={"Retry-After": str(seconds)},
        )


# ---------------------------------------------------------------------------------------
# Transactions with retry


async def in_transaction(
    kit: ServiceKit, work: Callable[[UnitOfWork], Awaitable[T]], attempts: int = 6
) -> T:
    """Run ``work`` in one unit of work; a lost race (unique email, stream version) is
    retried from scratch, and the retry then sees the winner's rows."""
    for attempt in range(attempts):
        try:
            async with kit.unit_of_work() as uow:
                result = await work(uow)
            return result
        except (UniqueViolation, ConcurrencyError):
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(random.uniform(0, 0.005 * (attempt + 1)))
    raise AssertionError("unreachable")


def _hygiene_problem(exc: HygieneError) -> Problem:
    return Problem.invalid_fields([e.as_dict() for e in exc.errors], title="Invalid input")


def _validation_problem(exc: ValidationError, prefix: str = "") -> list[dict[str, str]]:
    out = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        out.append(
            {"field": f"{prefix}{loc}" if loc else prefix.rstrip("."), "message": err["msg"]}
        )
    return out


def _draft_from_model(body: InquiryIn) -> InquiryDraft:
    return InquiryDraft(
        contact=body.contact.model_dump(),
        source=body.source.model_dump(exclude_none=True),
        answers=body.answers.model_dump(exclude_none=True),
        consent=body.consent.model_dump() if body.consent else None,
        notes=body.notes,
        rating=body.rating,
        external_id=body.external_id,
        occurred_at=body.occurred_at,
    )


def _region(settings: IntakeSettings) -> str | None:
    return settings.intake_default_region or None
