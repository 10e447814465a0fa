"""Intake's group commit alone: CPU per inquiry and inquiries per transaction, by spacing.

Not a test. Needs a running Postgres (``DATABASE_URL``; ``KAFKA_BOOTSTRAP_SERVERS`` is only
read, the relay is off)::

    uv run python bench/bench_group_commit.py [--rate 300] [--seconds 8] [--intervals 0,10,0,10]

Open-loop submits (the pipeline's sales-ready inquiry, each with an Idempotency-Key) at a
fixed rate through intake's ``InquiryBatcher`` into a scratch schema: the real claim, read,
write, append and commit, without HTTP and without the outbox relay. For each interval
(``LEADFLOW_INTAKE_GROUP_COMMIT_INTERVAL_MS``) it prints this process's CPU per inquiry (the
driver's validation and hygiene included, done before the clock starts) and the inquiries
per transaction. Alternate the intervals: the machine's load moves both figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import uvloop

from leadflow.events import UnitOfWork
from leadflow.events.db import plain_url
from leadflow.events.envelope import new_id
from leadflow.intake import domain
from leadflow.intake.api.runtime import _draft_from_model, in_transaction
from leadflow.intake.app import create_kit
from leadflow.intake.batching import Idempotency, InquiryBatcher, Pending
from leadflow.intake.commands import IngestItem
from leadflow.intake.schemas import InquiryIn
from leadflow.intake.settings import IntakeSettings
from leadflow.testing.platform.load import inquiry_body


async def run(rate: float, seconds: float, intervals: list[float]) -> None:
    token = uuid.uuid4().hex[:8]
    schema = f"bench_gc_{token}"
    database_url = os.environ["DATABASE_URL"]
    settings = IntakeSettings(
        database_url=database_url,
        kafka_bootstrap_servers=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
        db_schema=schema,
        topic_prefix=f"benchgc{token}.",
        run_consumers=False,
        log_json=False,
        admin_token="bench",
    )
    kit = create_kit(settings)
    await kit.start()
    made = 0

    def make() -> Pending:
        nonlocal made
        made += 1
        body = InquiryIn.model_validate(inquiry_body(made, token))
        inquiry = domain.clean_inquiry(_draft_from_model(body), channel="api")
        item = IngestItem(inquiry, "api", new_id(), None)
        return Pending(item, Idempotency("inquiries:bench", f"{token}-{made}", "h" * 64))

    try:
        for interval in intervals:
            count = int(rate * seconds)
            items = [make() for _ in range(count)]
            transactions = 0

            async def transaction(work: Callable[[UnitOfWork], Awaitable[Any]]) -> Any:
                nonlocal transactions
                transactions += 1
                return await in_transaction(kit, work)

            batcher = InquiryBatcher(
                transaction, max_batch=256, concurrency=4, interval=interval / 1000
            )
            tasks = []
            cpu = time.process_time()
            start = time.monotonic()
            for i, pending in enumerate(items):
                delay = start + i / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(batcher.submit(pending)))
            await asyncio.gather(*tasks)
            cpu = time.process_time() - cpu
            print(
                f"interval {interval:4.0f} ms: {cpu / count * 1e6:7.1f} us CPU per inquiry, "
                f"{count / transactions:5.2f} inquiries per transaction",
                flush=True,
            )
    finally:
        await kit.stop()
        conn = await asyncpg.connect(plain_url(database_url))
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=300.0)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--intervals", default="0,10,0,10,0,10")
    args = parser.parse_args()
    uvloop.install()
    intervals = [float(x) for x in args.intervals.split(",") if x]
    asyncio.run(run(args.rate, args.seconds, intervals))


if __name__ == "__main__":
    main()
