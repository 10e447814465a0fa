"""Re-score jobs: a model publish's progress through the open leads."""

from __future__ import annotations

import uuid
from typing import Any

from leadflow.events.sql import Tx


async def create_job(tx: Tx, job_id: uuid.UUID, model_version: int, total: int) -> None:
    await tx.execute(
        "INSERT INTO rescore_jobs (job_id, model_version, total) VALUES (:id, :v, :total)",
        id=job_id,
        v=model_version,
        total=total,
    )


async def get_job(tx: Tx, job_id: uuid.UUID) -> dict[str, Any] | None:
    row = await tx.fetchrow("SELECT * FROM rescore_jobs WHERE job_id = :id", id=job_id)
    return dict(row) if row else None


async def lock_job(tx: Tx, job_id: uuid.UUID) -> dict[str, Any] | None:
    row = await tx.fetchrow("SELECT * FROM rescore_jobs WHERE job_id = :id FOR UPDATE", id=job_id)
    return dict(row) if row else None


async def update_job(tx: Tx, job_id: uuid.UUID, **changes: Any) -> None:
    sets = ", ".join(f"{k} = :{k}" for k in changes)
    await tx.execute(f"UPDATE rescore_jobs SET {sets} WHERE job_id = :id", id=job_id, **changes)
