"""``make demo``: drive a few thousand synthetic leads through the running stack.

Why: a fresh install shows an empty dashboard; the demo fills it with a living funnel
(forms, badge scans, activity, reps accepting and closing deals) within a minute, using
the same public-API workload as the end-to-end tests (``bench/workload.py``).

Runs in a background thread of ``python -m leadflow.devstack run`` when ``LEADFLOW_DEMO=1``;
``LEADFLOW_DEMO_PEOPLE`` (default 3000) and ``LEADFLOW_DEMO_RATE`` (people/s, default 40)
tune it.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[5]


def _workload_module() -> Any:
    """``bench.workload`` lives at the repository root, next to the other benchmarks."""
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    import bench.workload as workload

    return workload


async def drive(
    creds: dict[str, str],
    port_base: int,
    say: Callable[[str], None],
    people: int,
    rate: float,
    seed: int | None = None,
) -> dict[str, Any]:
    wl = _workload_module()
    config = wl.WorkloadConfig(
        seed=seed if seed is not None else int(time.time()),
        people=people,
        rate=rate,
        concurrency=16,
        id_prefix=wl.new_run_prefix(),
        reps=wl.RepConfig(
            reps=8, teams=2, accept_delay=(0.5, 4.0), step_delay=(0.5, 2.0), poll_interval=1.0
        ),
    )
    plan = wl.make_plan(config)
    expected = plan.expected()
    say(
        f"demo: {people} people at {rate:g}/s (seed {config.seed}); expect about "
        f"{expected.mql} MQLs and {expected.won} won deals"
    )
    endpoints = wl.Endpoints.from_credentials(creds, port_base)
    async with wl.Workload(endpoints, plan, log=say) as workload:
        await workload.setup()
        say("demo: web form, 3 badge scanners, 8 reps in 2 teams and routing rules set up")
        for email, password in await rep_logins(endpoints, workload.rep_ids[:3]):
            say(f"demo: rep login at {endpoints.console}/login  {email}  {password}")
        async with workload.reps_working():
            capture = asyncio.create_task(workload.capture())
            while not capture.done():
                await asyncio.wait({capture}, timeout=5)
                c = workload.script.counts
                say(
                    f"demo: {len(workload.script.lead_of_person)} leads captured, "
                    f"{c['scan.accepted']} badge scans, "
                    f"{c['bad.refused']} bad requests refused; reps: {c['rep.accept']} accepted, "
                    f"{c['rep.won']} won, {c['rep.lost']} lost"
                )
            capture.result()
            say("demo: capture done; reps keep working their queues")
            await workload.wait_settled(timeout=600)
        summary: dict[str, Any] = workload.script.summary()
    say(f"demo: finished — outcomes {summary['outcomes']}")
    return summary


async def rep_logins(endpoints: Any, rep_ids: Sequence[str]) -> list[tuple[str, str]]:
    """Console users for a few of the demo's reps, so a person can sign in as one and work
    their queue beside the simulated reps: (e-mail, password) of each one created."""
    import httpx

    out: list[tuple[str, str]] = []
    if not endpoints.console:
        return out
    async with httpx.AsyncClient(timeout=30) as client:
        for rep_id in rep_ids:
            email, password = f"{rep_id}@demo.example.com", secrets.token_urlsafe(12)
            r = await client.post(
                f"{endpoints.console}/v1/users",
                headers={"Authorization": f"Bearer {endpoints.admin_token}"},
                json={
                    "email": email,
                    "name": f"Demo {rep_id}",
                    "password": password,
                    "roles": ["rep"],
                    "rep_id": rep_id,
                },
            )
            if r.status_code == 201:
                out.append((email, password))
    return out


def start_demo(
    creds: dict[str, str], specs: Sequence[Any], port_base: int, say: Callable[[str], None]
) -> threading.Thread | None:
    """Start the demo in a daemon thread (it dies with the stack); ``None`` if a service
    the demo needs is missing."""
    names = {s.name for s in specs}
    if not {"intake", "scoring", "routing", "analytics"} <= names:
        say(f"demo: needs intake, scoring, routing and analytics; running: {sorted(names)}")
        return None
    people = int(os.environ.get("LEADFLOW_DEMO_PEOPLE", "3000"))
    rate = float(os.environ.get("LEADFLOW_DEMO_RATE", "40"))

    def run() -> None:
        try:
            asyncio.run(drive(creds, port_base, say, people, rate))
        except Exception as exc:  # the platform keeps running; say why the demo stopped
            say(f"demo: stopped: {exc!r}")

    thread = threading.Thread(target=run, name="leadflow-demo", daemon=True)
    thread.start()
    return thread
