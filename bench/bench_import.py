"""Imports: rows/s of a 100k-row CSV import against a raw asyncpg COPY of the same file, and
the X Education export end to end (import -> projected -> trainable), in one run.

Not a test. Needs a running broker and Postgres (``KAFKA_BOOTSTRAP_SERVERS``,
``DATABASE_URL``)::

    uv run python bench/bench_import.py --rows 100000 [--no-x-education]

* **import vs COPY** — a synthetic CSV (e-mail, names, company, country, an external id, an
  outcome column: a history import, every row one ``lead.captured`` and one ``history.*``
  event) goes through intake's app in this process (``POST /v1/imports``: detection,
  parsing, hygiene, identity, events + outbox, progress, in 500-row transactions) until the
  import is ``completed``; the baseline is ``COPY ... FROM`` the same file into a table of
  text columns with asyncpg (``copy_to_table``), no parsing, no hygiene, no events. The ratio
  is import rows/s over COPY rows/s.
* **X Education end to end** — the platform as real processes on the same infrastructure
  (``Devstack``: all services), the real file (``tests/datasets.py``) uploaded unmodified
  with ``?preset=x-education``; seconds until the import is complete, until analytics'
  funnel shows its 3,559 won leads (projected), and until ``POST
  /v1/scoring/predictive/train`` with its defaults answers 201 (trainable), with the AUC.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.baselines import bench_infra, bench_settings, drop_schema
from leadflow.events.db import plain_url
from leadflow.intake.app import create_app
from leadflow.intake.settings import IntakeSettings
from leadflow.testing import app_client, wait_until
from leadflow.testing.topics import delete_quietly, scratch_prefix

COLUMNS = ["Record ID", "Email", "First Name", "Last Name", "Company", "Country", "Converted"]
MAPPING = {
    "Record ID": "external_id",
    "Email": "contact.email",
    "First Name": "contact.first_name",
    "Last Name": "contact.last_name",
    "Company": "contact.company",
    "Country": "contact.country",
    "Converted": "outcome",
}
FIRST = ["ann", "bob", "chloé", "dev", "eva", "femi", "gus", "hana", "ivan", "jo"]
LAST = ["lee", "okafor", "müller", "silva", "tanaka", "nguyen", "smith", "kowalski"]
COUNTRIES = ["Germany", "FR", "India", "United States", "BR", "JP", "Spain", ""]


def write_csv(path: Path, rows: int, rng: random.Random) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(COLUMNS)
        for i in range(rows):
            company = f"company{i % 5000}"
            out.writerow(
                [
                    f"r-{i}",
                    f"lead{i}@{company}.example",
                    rng.choice(FIRST),
                    rng.choice(LAST),
                    company.title(),
                    rng.choice(COUNTRIES),
                    "1" if rng.random() < 0.3 else "0",
                ]
            )


async def copy_baseline(database_url: str, schema: str, path: Path) -> float:
    """Seconds for asyncpg to COPY the same CSV into a table of text columns."""
    conn = await asyncpg.connect(plain_url(database_url))
    try:
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        cols = ", ".join(f'"{c}" text' for c in COLUMNS)
        await conn.execute(f'CREATE TABLE "{schema}".raw_rows ({cols})')
        started = time.perf_counter()
        await conn.copy_to_table(
            "raw_rows", schema_name=schema, source=str(path), format="csv", header=True
        )
        return time.perf_counter() - started
    finally:
        await conn.close()


async def import_rows(bootstrap: str, database_url: str, path: Path, rows: int) -> float:
    """Seconds from POST /v1/imports to ``completed`` for the file, through intake's app."""
    tag = uuid.uuid4().hex[:8]
    settings = bench_settings(
        IntakeSettings, bootstrap, database_url, scratch_prefix(tag), f"bench_import_{tag}",
        run_consumers=False,
    )  # fmt: skip
    try:
        async with app_client(create_app(settings)) as client:
            headers = {"Authorization": "Bearer bench", "Content-Type": "text/csv"}
            data = await asyncio.to_thread(path.read_bytes)
            started = time.perf_counter()
            r = await client.post(
                "/v1/imports",
                params={"mapping": json.dumps(MAPPING), "source_system": "bench"},
                headers=headers,
                content=data,
            )
            assert r.status_code == 202, r.text
            url = f"/v1/imports/{r.json()['import_id']}"

            async def done() -> dict[str, Any] | None:
                body: dict[str, Any] = (await client.get(url, headers=headers)).json()
                return body if body["status"] != "running" else None

            result = await wait_until(done, timeout=3600, interval=0.5, message="import done")
            seconds = time.perf_counter() - started
            assert result["status"] == "completed", result
            assert result["accepted"] + result["rejected"] == rows, result
            return seconds
    finally:
        await drop_schema(database_url, settings.db_schema)
        await delete_quietly(bootstrap, [settings.topic_prefix])


async def x_education(bootstrap: str, database_url: str) -> dict[str, Any]:
    """The real export through the platform as processes: import -> projected -> trainable."""
    from bench.workload import Endpoints
    from leadflow.devstack.__main__ import Devstack
    from leadflow.devstack.procs import free_block
    from tests.datasets import X_EDUCATION

    tag = uuid.uuid4().hex[:8]
    home = Path(tempfile.mkdtemp(prefix="leadflow-bench-import-"))
    base = free_block(6)
    stack = Devstack(
        home, kafka_port=0, pg_port=0, quiet=True, port_base=base,
        kafka_bootstrap=bootstrap, database_url=database_url,
        schema_prefix=f"bx{tag}_", topic_prefix=scratch_prefix(tag),
        extra_env={"LEADFLOW_OUTBOX_POLL_SECONDS": "0.1", "LEADFLOW_LOG_LEVEL": "WARNING"},
    )  # fmt: skip
    stack.start_infra()
    specs = await asyncio.to_thread(stack.start_services)
    e = Endpoints.from_credentials(stack.credentials(), base)
    try:
        async with httpx.AsyncClient(
            timeout=120, headers={"Authorization": f"Bearer {e.admin_token}"}
        ) as client:
            for spec in specs:

                async def ready(port: int = spec.port) -> bool:
                    try:
                        r = await client.get(f"http://127.0.0.1:{port}/readyz")
                    except httpx.HTTPError:
                        return False
                    return r.status_code == 200

                await wait_until(ready, timeout=120, message=f"{spec.name} ready")
            data = await asyncio.to_thread(X_EDUCATION.read_bytes)
            marks: dict[str, Any] = {}
            started = time.perf_counter()
            r = await client.post(
                f"{e.intake}/v1/imports",
                params={"preset": "x-education"},
                headers={"Content-Type": "text/csv"},
                content=data,
            )
            assert r.status_code == 202, r.text
            url = f"{e.intake}/v1/imports/{r.json()['import_id']}"

            async def imported() -> bool:
                return bool((await client.get(url)).json()["status"] != "running")

            await wait_until(imported, timeout=600, interval=0.25, message="imported")
            marks["imported_s"] = time.perf_counter() - started

            async def projected() -> bool:
                body = (await client.get(f"{e.analytics}/v1/funnel")).json()
                won = {row["stage"]: row["count"] for row in body["waterfall"]}.get("won")
                return bool(won == 3559)

            await wait_until(projected, timeout=600, interval=0.25, message="projected")
            marks["projected_s"] = time.perf_counter() - started

            async def outcomes() -> bool:
                body = (await client.get(f"{e.scoring}/v1/scoring/suggestions")).json()
                return bool(body.get("outcomes") == 9237)

            await wait_until(outcomes, timeout=600, interval=0.25, message="outcomes")
            trained = await client.post(f"{e.scoring}/v1/scoring/predictive/train")
            assert trained.status_code == 201, trained.text
            marks["trainable_s"] = time.perf_counter() - started
            metrics = trained.json()["metrics"]
            marks["auc"] = metrics["auc"]
            marks["rule_model_auc"] = metrics["rule_model"]["auc"]
            marks["holdout"] = metrics["holdout"]["method"]
            return marks
    finally:
        await asyncio.to_thread(stack.stop_all)
        await delete_quietly(bootstrap, [stack.topic_prefix])


async def run(args: argparse.Namespace) -> str:
    bootstrap, database_url = bench_infra()
    lines = ["## bench_import", ""]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "leads.csv"
        write_csv(path, args.rows, random.Random(7))
        mb = path.stat().st_size / 1e6
        schema = f"bench_copy_{uuid.uuid4().hex[:8]}"
        try:
            copy_s = await copy_baseline(database_url, schema, path)
        finally:
            await drop_schema(database_url, schema)
        import_s = await import_rows(bootstrap, database_url, path, args.rows)
    copy_rate, import_rate = args.rows / copy_s, args.rows / import_s
    lines += [
        f"{args.rows:,} rows ({mb:.1f} MB CSV, history import: 2 events a row)",
        "",
        "| leg | seconds | rows/s |",
        "|---|---|---|",
        f"| raw asyncpg COPY (text columns, no parsing) | {copy_s:.2f} | {copy_rate:,.0f} |",
        f"| POST /v1/imports until completed | {import_s:.1f} | {import_rate:,.0f} |",
        "",
        f"**ratio import / COPY: {import_rate / copy_rate:.4f}**",
        "",
    ]
    if args.x_education:
        marks = await x_education(bootstrap, database_url)
        lines += [
            "X Education export (9,237 rows, unmodified) through the platform as processes:",
            "",
            f"- imported (status completed): {marks['imported_s']:.1f} s",
            f"- projected (analytics funnel won = 3,559): {marks['projected_s']:.1f} s",
            f"- trainable (default train answered 201): {marks['trainable_s']:.1f} s "
            f"(AUC {marks['auc']}, rule model {marks['rule_model_auc']}, "
            f"{marks['holdout']} holdout)",
            "",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--no-x-education", dest="x_education", action="store_false")
    parser.add_argument("--quick", action="store_true", help="10k rows")
    args = parser.parse_args(argv)
    if args.quick:
        args.rows = 10_000
    os.environ.setdefault("LEADFLOW_LOG_LEVEL", "WARNING")
    print(asyncio.run(run(args)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
