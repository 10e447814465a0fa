"""Badge scans already recorded (a device's retry is recognised by its scan id)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from leadflow.events.sql import Tx

# ---------------------------------------------------------------------------------------
# Scans


async def seen_scans(
    tx: Tx, device: str, scan_ids: Sequence[str]
) -> dict[str, tuple[uuid.UUID, uuid.UUID]]:
    rows = await tx.fetch(
        "SELECT scan_id, lead_id, inquiry_id FROM scans WHERE device_id = :d "
        "AND scan_id = ANY(CAST(:ids AS text[]))",
        d=device,
        ids=list(scan_ids),
    )
    return {r.scan_id: (r.lead_id, r.inquiry_id) for r in rows}


async def record_scans(
    tx: Tx, device: str, rows: Sequence[tuple[str, uuid.UUID, uuid.UUID]]
) -> None:
    if not rows:
        return
    await tx.execute(
        "INSERT INTO scans (device_id, scan_id, lead_id, inquiry_id) SELECT :d, * FROM "
        "unnest(CAST(:ids AS text[]), CAST(:leads AS uuid[]), CAST(:inq AS uuid[]))",
        d=device,
        ids=[r[0] for r in rows],
        leads=[r[1] for r in rows],
        inq=[r[2] for r in rows],
    )
