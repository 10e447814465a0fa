"""``leadflow`` (or ``python -m leadflow.events.cli``): the operator's jobs.

  migrate <service>|all        alembic upgrade head of services/<service>/migrations into the
                               service's schema (DATABASE_URL)
  create-topics                leadflow.<producer> and leadflow.<producer>.dlq, idempotent
                               (KAFKA_BOOTSTRAP_SERVERS)
  dlq list|show|replay         dead letters of leadflow.<producer>.dlq
  schemas                      JSON Schemas + AsyncAPI from the catalogue (see schemagen)

Expected failures (unreachable broker or database, unknown position...) print one line on
stderr and exit 1; usage errors exit 2.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from leadflow.events.envelope import dlq_topic_for, topic_for
from leadflow.events.settings import DEFAULT_TOPIC_RETENTION_HOURS

PRODUCERS = ("intake", "scoring", "routing", "sla", "notify")
# service -> (schema, python package); sla-monitor keeps its data in schema ``sla``.
SERVICES: dict[str, tuple[str, str]] = {
    "console": ("console", "leadflow.console"),
    "intake": ("intake", "leadflow.intake"),
    "scoring": ("scoring", "leadflow.scoring"),
    "routing": ("routing", "leadflow.routing"),
    "sla-monitor": ("sla", "leadflow.sla_monitor"),
    "analytics": ("analytics", "leadflow.analytics"),
    "notify": ("notify", "leadflow.notify"),
}
ALIASES = {"sla": "sla-monitor", "sla_monitor": "sla-monitor"}
ROOT = Path(__file__).resolve().parents[5]  # the workspace (or /app in an image)


class CliError(Exception):
    """An expected failure: printed as one line, exit code 1."""


# -- migrate ----------------------------------------------------------------------------


def migrations_dir(service: str) -> Path:
    """``services/<service>/migrations``: in the workspace, or next to the installed package."""
    candidate = ROOT / "services" / service / "migrations"
    if (candidate / "env.py").exists():
        return candidate
    with contextlib.suppress(ImportError, ValueError):
        spec = importlib.util.find_spec(SERVICES[service][1])
        for location in (spec.submodule_search_locations or []) if spec else []:
            found = Path(location).resolve().parents[2] / "migrations"
            if (found / "env.py").exists():
                return found
    raise CliError(f"migrations of {service} not found (looked in {candidate})")


def database_url() -> str:
    url = os.environ.get("DATABASE_URL") or os.environ.get("LEADFLOW_DATABASE_URL")
    if not url:
        raise CliError("DATABASE_URL is not set (e.g. postgresql://user:pass@host:5432/leadflow)")
    return url


def cmd_migrate(args: argparse.Namespace) -> int:
    from leadflow.events.db import upgrade

    names = list(SERVICES) if args.service == "all" else [args.service]
    url = database_url()
    for name in names:
        schema = SERVICES[name][0]
        if args.schema and len(names) == 1:
            schema = args.schema
        elif len(names) == 1 and os.environ.get("LEADFLOW_DB_SCHEMA"):
            schema = os.environ["LEADFLOW_DB_SCHEMA"]  # what the service itself would use
        schema = f"{args.schema_prefix}{schema}"
        directory = migrations_dir(name)
        try:
            upgrade(url, schema, directory)
        except Exception as exc:  # alembic/asyncpg/OS errors: one line, not a trace
            raise CliError(f"migrating {name} (schema {schema}) failed: {_why(exc)}") from exc
        print(f"{name}: schema {schema} at head")
    return 0


def _why(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


# -- create-topics ----------------------------------------------------------------------


def bootstrap() -> str:
    servers = os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or os.environ.get(
        "LEADFLOW_KAFKA_BOOTSTRAP_SERVERS"
    )
    if not servers:
        raise CliError("KAFKA_BOOTSTRAP_SERVERS is not set (e.g. kafka:9092)")
    return servers


def prefix_of(args: argparse.Namespace) -> str:
    if args.prefix is not None:
        return str(args.prefix)
    return os.environ.get("LEADFLOW_TOPIC_PREFIX", "")


def all_topics(prefix: str) -> list[str]:
    names: list[str] = []
    for producer in PRODUCERS:
        names += [topic_for(producer, prefix), dlq_topic_for(producer, prefix)]
    return names


async def create_topics(
    servers: str,
    topics: Sequence[str],
    partitions: int,
    replication_factor: int,
    retention_hours: float,
    min_insync_replicas: int | None = None,
) -> dict[str, str]:
    """Create the missing topics; returns topic -> "created" | "exists (N partitions)".
    Existing topics are left as they are (their retention included)."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaError, TopicAlreadyExistsError

    from leadflow.events.topics import new_topics

    admin = AIOKafkaAdminClient(bootstrap_servers=servers, request_timeout_ms=15_000)
    try:
        try:
            await asyncio.wait_for(admin.start(), timeout=20)
        except (KafkaError, OSError, TimeoutError) as exc:
            raise CliError(f"cannot reach Kafka at {servers}: {_why(exc)}") from exc
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t not in existing]
        result: dict[str, str] = {}
        if missing:
            try:
                response = await admin.create_topics(
                    new_topics(
                        missing,
                        partitions,
                        replication_factor,
                        retention_hours,
                        min_insync_replicas,
                    )
                )
            except TopicAlreadyExistsError:
                response = None  # raced with another creator: fine
            for name, code, message in _topic_errors(response):
                if code not in (0, 36):  # 36 = TOPIC_ALREADY_EXISTS
                    raise CliError(f"creating {name} failed: error {code} {message or ''}".strip())
            result.update({t: "created" for t in missing})
        if existing & set(topics):
            described = await admin.describe_topics([t for t in topics if t in existing])
            for topic in described:
                count = len(topic.get("partitions", []))
                result[topic["topic"]] = f"exists ({count} partitions)"
        return result
    finally:
        with contextlib.suppress(Exception):
            await admin.close()


def _topic_errors(response: Any) -> list[tuple[str, int, str | None]]:
    errors = getattr(response, "topic_errors", None) or []
    out = []
    for entry in errors:
        name, code = entry[0], entry[1]
        message = entry[2] if len(entry) > 2 else None
        out.append((name, int(code), message))
    return out


def _min_insync_replicas(args: argparse.Namespace) -> int | None:
    """``--min-insync-replicas``, else ``$LEADFLOW_TOPIC_MIN_INSYNC_REPLICAS``, else None
    (the broker's ``min.insync.replicas``)."""
    if args.min_insync_replicas is not None:
        return int(args.min_insync_replicas)
    configured = os.environ.get("LEADFLOW_TOPIC_MIN_INSYNC_REPLICAS")
    if not configured:
        return None
    try:
        return int(configured)
    except ValueError as exc:
        raise CliError(
            f"LEADFLOW_TOPIC_MIN_INSYNC_REPLICAS is not a whole number: {configured!r}"
        ) from exc


def cmd_create_topics(args: argparse.Namespace) -> int:
    if args.partitions < 1 or args.replication_factor < 1:
        raise CliError("--partitions and --replication-factor must be at least 1")
    retention = args.retention_hours
    if retention is None:
        configured = os.environ.get("LEADFLOW_TOPIC_RETENTION_HOURS")
        try:
            retention = float(configured) if configured else DEFAULT_TOPIC_RETENTION_HOURS
        except ValueError as exc:
            raise CliError(
                f"LEADFLOW_TOPIC_RETENTION_HOURS is not a number: {configured!r}"
            ) from exc
    if retention <= 0:
        raise CliError("--retention-hours must be positive")
    min_isr = _min_insync_replicas(args)
    if min_isr is not None and not 1 <= min_isr <= args.replication_factor:
        raise CliError(
            f"--min-insync-replicas ({min_isr}) must be between 1 and the replication factor "
            f"({args.replication_factor}): more and every acks=all write is refused"
        )
    topics = all_topics(prefix_of(args))
    result = asyncio.run(
        create_topics(
            bootstrap(), topics, args.partitions, args.replication_factor, retention, min_isr
        )
    )
    for topic in topics:
        print(f"{topic}: {result.get(topic, 'unknown')}")
    return 0


# -- dlq ----------------------------------------------------------------------------------


def _producer(name: str) -> str:
    producer = name.replace("-monitor", "")
    if producer not in PRODUCERS:
        raise CliError(f"unknown producer {name!r}; one of {', '.join(PRODUCERS)}")
    return producer


def _replay_group(args: argparse.Namespace) -> str:
    from leadflow.events.dlq import REPLAY_GROUP

    return str(args.replay_group or f"{prefix_of(args)}{REPLAY_GROUP}")


def cmd_dlq_list(args: argparse.Namespace) -> int:
    from leadflow.events.dlq import list_dead_letters

    topic = dlq_topic_for(_producer(args.producer), prefix_of(args))
    listing = asyncio.run(
        list_dead_letters(
            bootstrap(), topic, consumer_group=args.group, replay_group=_replay_group(args)
        )
    )
    if args.json:
        print(
            json.dumps(
                {
                    "topic": topic,
                    "count": listing.count,
                    "pending": listing.pending,
                    "entries": [d.summary() for d in listing.letters],
                },
                indent=2,
            )
        )
        return 0
    note = "" if listing.exists else " (topic does not exist yet)"
    print(f"{topic}: {listing.count} dead letters, {listing.pending} not replayed{note}")
    for d in listing.letters:
        print(
            f"{d.partition}:{d.offset}  from {d.original_topic}"
            f"[{d.original_partition}]@{d.original_offset}  group={d.consumer_group}  "
            f"type={d.event_type or '?'}  {'replayed' if d.replayed else 'pending'}  "
            f"error={_one_line(d.error)}"
        )
    return 0


def _one_line(text: str | None, width: int = 160) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def cmd_dlq_show(args: argparse.Namespace) -> int:
    from leadflow.events.dlq import get_dead_letter, parse_position

    topic = dlq_topic_for(_producer(args.producer), prefix_of(args))
    letter = asyncio.run(
        get_dead_letter(
            bootstrap(), topic, parse_position(args.position), replay_group=_replay_group(args)
        )
    )
    print(json.dumps(letter.detail(), indent=2, ensure_ascii=False, default=str))
    return 0


def cmd_dlq_replay(args: argparse.Namespace) -> int:
    from leadflow.events.dlq import parse_position, replay_dead_letters

    topic = dlq_topic_for(_producer(args.producer), prefix_of(args))
    only = [parse_position(p) for p in args.only or []]
    report = asyncio.run(
        replay_dead_letters(
            bootstrap(),
            topic,
            consumer_group=args.group,
            only=only or None,
            dry_run=args.dry_run,
            replay_group=_replay_group(args),
        )
    )
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
        return 0
    verb = "would replay" if args.dry_run else "replayed"
    for d in report.replayed:
        print(f"{verb} {d.partition}:{d.offset} -> {d.original_topic} ({d.event_type or '?'})")
    for d in report.already_replayed:
        print(f"skipped {d.partition}:{d.offset}: replayed before")
    for d, why in report.unreplayable:
        print(f"skipped {d.partition}:{d.offset}: {why}")
    print(
        f"{topic}: {verb} {len(report.replayed)}, already replayed "
        f"{len(report.already_replayed)}, unreplayable {len(report.unreplayable)}"
    )
    return 0


# -- schemas ------------------------------------------------------------------------------


def cmd_schemas(args: argparse.Namespace) -> int:
    from leadflow.events import schemagen

    return int(schemagen.main(args.rest))


# -- entry point --------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="leadflow",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="command")

    m = sub.add_parser("migrate", help="run a service's migrations (alembic upgrade head)")
    m.add_argument("service", choices=[*SERVICES, *ALIASES, "all"])
    m.add_argument("--schema", help="schema to migrate (one service only; default its own)")
    m.add_argument("--schema-prefix", default="", help="prefix every schema name (tests)")
    m.set_defaults(func=cmd_migrate)

    t = sub.add_parser("create-topics", help="create leadflow.<producer> and .dlq topics")
    t.add_argument("--partitions", type=int, required=True)
    t.add_argument("--replication-factor", type=int, required=True)
    t.add_argument("--prefix", help="topic name prefix (default $LEADFLOW_TOPIC_PREFIX)")
    t.add_argument(
        "--retention-hours",
        type=float,
        help="retention.ms of the topics created (default $LEADFLOW_TOPIC_RETENTION_HOURS or 168)",
    )
    t.add_argument(
        "--min-insync-replicas",
        type=int,
        help="min.insync.replicas of the topics created (default "
        "$LEADFLOW_TOPIC_MIN_INSYNC_REPLICAS, else the broker's); a cluster: 2 with replication 3",
    )
    t.set_defaults(func=cmd_create_topics)

    d = sub.add_parser("dlq", help="list, show and replay dead letters")
    dsub = d.add_subparsers(dest="dlq_command", required=True, metavar="action")

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("producer", help="intake, scoring, routing or sla")
        sp.add_argument("--prefix", help="topic name prefix (default $LEADFLOW_TOPIC_PREFIX)")
        sp.add_argument(
            "--replay-group",
            help="consumer group recording replays (default <prefix>leadflow.dlq-replay)",
        )

    dl = dsub.add_parser("list", help="count and one line per dead letter")
    common(dl)
    dl.add_argument("--group", help="only dead letters of this consumer group")
    dl.add_argument("--json", action="store_true")
    dl.set_defaults(func=cmd_dlq_list)

    ds = dsub.add_parser("show", help="one dead letter: headers and value")
    common(ds)
    ds.add_argument("position", help="<partition>:<offset> in the DLQ topic (see list)")
    ds.set_defaults(func=cmd_dlq_show)

    dr = dsub.add_parser("replay", help="re-publish dead letters to their original topic")
    common(dr)
    dr.add_argument("--group", help="only dead letters of this consumer group")
    dr.add_argument(
        "--only", nargs="+", metavar="P:O", help="only these positions (<partition>:<offset>)"
    )
    dr.add_argument("--dry-run", action="store_true", help="say what would be replayed")
    dr.add_argument("--json", action="store_true")
    dr.set_defaults(func=cmd_dlq_replay)

    s = sub.add_parser("schemas", help="write/check JSON Schemas and AsyncAPI (schemagen)")
    s.add_argument("rest", nargs=argparse.REMAINDER, help="arguments for schemagen (e.g. --check)")
    s.set_defaults(func=cmd_schemas)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from leadflow.events.dlq import DlqError

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["schemas"]:  # everything after it belongs to schemagen (e.g. --check)
        from leadflow.events import schemagen

        return int(schemagen.main(argv[1:]))
    args = parser().parse_args(argv)
    # Client libraries log connection retries at WARNING/ERROR; the one-line error says it.
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    if getattr(args, "service", None) in ALIASES:
        args.service = ALIASES[args.service]
    try:
        return int(args.func(args))
    except (CliError, DlqError) as exc:
        print(f"leadflow: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
