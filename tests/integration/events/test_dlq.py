"""Dead letters end to end: a probe consumer dead-letters a record while its handler is broken;
the CLI and the admin API list it, show it and replay it once the cause is fixed, and the
event is then applied exactly once (replays are remembered; a forced second replay is
skipped by the inbox)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from leadflow.events.catalogue.intake import ActivityRecorded
from leadflow.events.dlq import ReplayMark, list_dead_letters
from leadflow.events.envelope import Envelope, new_id
from leadflow.events.kit import ServiceKit
from leadflow.events.service import create_service_app
from leadflow.events.uow import UnitOfWork
from leadflow.testing import app_client, produce_events, wait_until

from .probe import MIGRATIONS, ProbeSettings, activity, on_activity

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
ROOT = Path(__file__).resolve().parents[3]
ADMIN = {"Authorization": "Bearer test-admin-token"}


class Toggle:
    """A handler bug that an operator can fix: ``toggle`` activities fail while broken."""

    def __init__(self) -> None:
        self.broken = True

    async def handle(self, event: Envelope, uow: UnitOfWork) -> None:
        payload = event.payload
        assert isinstance(payload, ActivityRecorded)
        if payload.activity_type == "toggle" and self.broken:
            raise ValueError("toggle handler is broken")
        await on_activity(event, uow)


def toggle_kit(settings: ProbeSettings, toggle: Toggle) -> ServiceKit:
    return ServiceKit(
        settings,
        consumes=["intake"],
        handlers={ActivityRecorded: toggle.handle},
        migrations_dir=MIGRATIONS,
    )


async def effect_counts(kit: ServiceKit) -> dict[uuid.UUID, int]:
    async with kit.connect() as conn:
        rows = await conn.fetch(
            "SELECT event_id, count(*) FROM effects WHERE seq >= 0 GROUP BY event_id"
        )
        return {r[0]: r[1] for r in rows}


async def cli(isolation: Any, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": isolation.kafka_bootstrap,
        "LEADFLOW_TOPIC_PREFIX": isolation.topic_prefix,
    }
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "leadflow.events.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
    )


async def dead_letter_and_wait(kit: ServiceKit, isolation: Any) -> tuple[Envelope, list[Envelope]]:
    """One broken ``toggle`` record between good ones, all of one lead (one partition)."""
    lead = new_id()
    bad = activity(lead, 2, kind="toggle")
    good = [activity(lead, 1), activity(lead, 3)]
    await produce_events(
        isolation.kafka_bootstrap, isolation.topic("intake"), [good[0], bad, good[1]]
    )
    counts = await wait_until(
        lambda: _with(effect_counts(kit), lambda c: len(c) >= 2), message="good records applied"
    )
    assert set(counts) == {e.event_id for e in good}
    dlq = f"{isolation.topic('intake')}.dlq"
    await wait_until(
        lambda: _with(list_dead_letters(isolation.kafka_bootstrap, dlq), lambda li: li.count >= 1),
        message="dead letter written",
    )
    return bad, good


async def _with(coro: Any, check: Any) -> Any:
    value = await coro
    return value if check(value) else None


async def test_cli_lists_shows_and_replays_a_dead_letter_applied_exactly_once(
    settings_for, isolation
) -> None:
    toggle = Toggle()
    kit = toggle_kit(settings_for(ProbeSettings, max_attempts=2), toggle)
    await kit.start()
    try:
        bad, _good = await dead_letter_and_wait(kit, isolation)
        group = f"{isolation.topic_prefix}leadflow.scoring"

        listed = await cli(isolation, "dlq", "list", "intake")
        assert listed.returncode == 0, listed.stderr
        lines = listed.stdout.strip().splitlines()
        assert "1 dead letters, 1 not replayed" in lines[0]
        assert len(lines) == 2
        position = lines[1].split()[0]
        assert f"from {isolation.topic('intake')}[" in lines[1]
        assert f"group={group}" in lines[1]
        assert "type=activity.recorded" in lines[1] and "pending" in lines[1]
        assert "ValueError: toggle handler is broken" in lines[1]

        shown = await cli(isolation, "dlq", "show", "intake", position)
        assert shown.returncode == 0, shown.stderr
        detail = json.loads(shown.stdout)
        assert detail["value"]["event_id"] == str(bad.event_id)
        assert detail["headers"]["dlq.consumer_group"] == group
        assert detail["key"] == str(bad.lead_id)

        missing = await cli(isolation, "dlq", "show", "intake", "0:99999")
        assert missing.returncode == 1 and "no dead letter at 0:99999" in missing.stderr
        assert "Traceback" not in missing.stderr

        dry = await cli(isolation, "dlq", "replay", "intake", "--dry-run")
        assert dry.returncode == 0 and "would replay 1" in dry.stdout
        assert bad.event_id not in await effect_counts(kit)

        foreign = await cli(
            isolation, "dlq", "replay", "intake", "--group", "other", "--only", position
        )
        assert foreign.returncode == 1
        assert f"another consumer group requested: {position} ({group})" in foreign.stderr

        toggle.broken = False  # the fix is deployed
        replayed = await cli(isolation, "dlq", "replay", "intake")
        assert replayed.returncode == 0, replayed.stderr
        assert f"replayed {position} -> {isolation.topic('intake')}" in replayed.stdout
        counts = await wait_until(
            lambda: _with(effect_counts(kit), lambda c: bad.event_id in c),
            message="replayed record applied",
        )
        assert counts[bad.event_id] == 1

        again = await cli(isolation, "dlq", "replay", "intake")
        assert again.returncode == 0
        assert "replayed 0, already replayed 1" in again.stdout
        after = await cli(isolation, "dlq", "list", "intake")
        assert "1 dead letters, 0 not replayed" in after.stdout and "replayed" in after.stdout

        # Force a second publication (another replay group): the inbox skips it.
        forced = await cli(isolation, "dlq", "replay", "intake", "--replay-group", "t-other")
        assert "replayed 1" in forced.stdout
        sentinel = activity(bad.lead_id, 4)  # same lead, same partition: handled after it
        await produce_events(isolation.kafka_bootstrap, isolation.topic("intake"), [sentinel])
        counts = await wait_until(
            lambda: _with(effect_counts(kit), lambda c: sentinel.event_id in c),
            message="sentinel applied",
        )
        assert counts[bad.event_id] == 1
        assert all(n == 1 for n in counts.values()) and len(counts) == 4
    finally:
        await kit.stop()


async def test_admin_api_counts_lists_and_replays_dead_letters(settings_for, isolation) -> None:
    toggle = Toggle()
    kit = toggle_kit(settings_for(ProbeSettings, max_attempts=2), toggle)
    app = create_service_app(kit, title="probe")
    async with app_client(app) as client:
        bad, _good = await dead_letter_and_wait(kit, isolation)
        assert (await client.get("/v1/admin/dlq")).status_code == 401
        forbidden = await client.get("/v1/admin/dlq", headers={"Authorization": "Bearer nope"})
        assert forbidden.status_code == 401  # not a valid credential
        assert forbidden.headers["content-type"] == "application/problem+json"

        overview = (await client.get("/v1/admin/dlq", headers=ADMIN)).json()
        assert overview["topics"] == [
            {
                "topic": f"{isolation.topic('intake')}.dlq",
                "source_topic": isolation.topic("intake"),
                "count": 1,
                "pending": 1,
            }
        ]
        listed = await client.get("/v1/admin/dlq/intake", params={"limit": 5}, headers=ADMIN)
        assert listed.status_code == 200
        entry = listed.json()["entries"][0]
        assert entry["event_id"] == str(bad.event_id)
        assert entry["error"].startswith("ValueError")
        assert entry["value"]["payload"]["activity_type"] == "toggle"

        unknown = await client.get("/v1/admin/dlq/routing", headers=ADMIN)
        assert unknown.status_code == 404
        assert unknown.json()["errors"][0]["field"] == "topic"
        bad_position = await client.post(
            "/v1/admin/dlq/intake/replay", json={"only": ["x"]}, headers=ADMIN
        )
        assert bad_position.status_code == 422
        assert bad_position.json()["errors"][0]["field"] == "only[0]"

        toggle.broken = False
        replay = await client.post(
            "/v1/admin/dlq/intake/replay", json={"only": [entry["position"]]}, headers=ADMIN
        )
        assert replay.status_code == 200, replay.text
        assert [d["event_id"] for d in replay.json()["replayed"]] == [str(bad.event_id)]
        counts = await wait_until(
            lambda: _with(effect_counts(kit), lambda c: bad.event_id in c),
            message="replayed record applied",
        )
        assert counts[bad.event_id] == 1
        again = (await client.post("/v1/admin/dlq/intake/replay", json={}, headers=ADMIN)).json()
        assert again["replayed"] == [] and len(again["already_replayed"]) == 1
        overview = (await client.get("/v1/admin/dlq", headers=ADMIN)).json()
        assert overview["topics"][0]["pending"] == 0


def test_replay_marks_compact_contiguous_offsets_and_keep_scattered_ones() -> None:
    mark = ReplayMark()
    mark.add([5, 7], begin=3)
    assert (mark.low, mark.extra) == (3, {5, 7})
    assert not mark.done(4) and mark.done(5) and mark.done(2)
    mark.add([3, 4, 6], begin=3)
    assert (mark.low, mark.extra) == (8, set())
    mark.add([10, 11, 12, 20], begin=0)
    parsed = ReplayMark.parse(mark.low, mark.metadata())
    assert (parsed.low, parsed.extra) == (8, {10, 11, 12, 20})
    assert mark.metadata().endswith("10-12,20")
