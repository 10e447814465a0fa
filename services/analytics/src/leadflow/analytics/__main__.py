"""``python -m leadflow.analytics rebuild <name|all>`` · ``serve`` · ``migrate``."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from leadflow.analytics.projections import PROJECTION_NAMES, all_projections
from leadflow.analytics.settings import AnalyticsSettings


async def rebuild(names: list[str], settings: AnalyticsSettings) -> None:
    from leadflow.analytics.rebuild import rebuild_group
    from leadflow.events.projection import RebuildProgress
    from leadflow.events.sql import Database

    engine = Database(settings.database_url, settings.schema_name)
    members = all_projections()
    progress = {m.name: RebuildProgress(m.name) for m in members}
    try:
        # One pass over the log rebuilds the named projections and the rest of their group.
        task = asyncio.create_task(
            rebuild_group(
                engine,
                members,
                chunk_events=settings.projection_batch,
                progress=progress,
            )
        )
        while not task.done():
            await asyncio.wait({task}, timeout=1.0)
            p = progress[names[0]]
            print(f"{p.processed}/{p.total} events ({p.events_per_second:,.0f}/s)", file=sys.stderr)
        p = await task
        took = p.finished_at - p.started_at
        print(
            f"rebuilt {', '.join(sorted(progress))} from {p.processed} events in {took:.1f}s "
            f"({p.processed / max(took, 1e-9):,.0f} events/s, one pass)"
        )
    finally:
        await engine.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m leadflow.analytics")
    sub = parser.add_subparsers(dest="cmd", required=True)
    rb = sub.add_parser("rebuild", help="clear and replay projections from the log")
    rb.add_argument("name", choices=[*PROJECTION_NAMES, "all"])
    sub.add_parser("migrate", help="alembic upgrade head for the analytics schema")
    sub.add_parser("serve", help="run the HTTP service")
    args = parser.parse_args(argv)
    settings = AnalyticsSettings()
    if args.cmd == "migrate":
        from leadflow.analytics.app import MIGRATIONS
        from leadflow.events.db import upgrade

        upgrade(settings.database_url, settings.schema_name, MIGRATIONS)
        return 0
    if args.cmd == "serve":
        import uvicorn

        from leadflow.analytics.app import create_app

        uvicorn.run(create_app(settings), host=settings.host, port=settings.port)
        return 0
    if settings.migrate_on_start:
        from leadflow.analytics.app import MIGRATIONS
        from leadflow.events.db import upgrade

        upgrade(settings.database_url, settings.schema_name, MIGRATIONS)
    names = list(PROJECTION_NAMES) if args.name == "all" else [args.name]
    started = time.time()
    asyncio.run(rebuild(names, settings))
    print(f"done in {time.time() - started:.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
