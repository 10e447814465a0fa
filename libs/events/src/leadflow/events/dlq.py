"""Dead letters: list, inspect and replay the records consumers gave up on.

A consumer that cannot handle a record copies it to ``<topic>.dlq`` with ``dlq.*`` headers
(error, original topic/partition/offset, consumer group, time) and moves on. Once the cause
is fixed, an operator replays dead letters: each is re-published to its original topic with
its original key, value and headers (minus ``dlq.*``). Every consumer group sees it again;
those that already applied the event skip it by their inbox, so a replay is safe.

What has been replayed is remembered in Kafka itself, as the committed offset of a replay
consumer group on the DLQ topic (default ``<prefix>leadflow.dlq-replay``): every dead letter
below the committed offset is done; replayed letters above it (a selective replay) are listed
in the commit's metadata. A replay that is interrupted after publishing and before that commit
is repeated next time, which the inbox makes harmless.

The CLI (``leadflow dlq ...``) and the admin API of every service (``/v1/admin/dlq``,
``dlq_api``) both use the functions of this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord

DLQ_HEADER_PREFIX = "dlq."
REPLAY_GROUP = "leadflow.dlq-replay"
_MARK_PREFIX = "leadflow-dlq-replay:v1:"
_MAX_METADATA = 3500  # brokers accept 4096 bytes of commit metadata by default
_TIMEOUT = 15.0


class DlqError(Exception):
    """An expected failure (broker unreachable, unknown position...): said plainly, no trace."""


Position = tuple[int, int]  # (partition, offset) in the DLQ topic


def parse_position(text: str) -> Position:
    """``"2:17"`` -> ``(2, 17)``; anything else is a DlqError naming the input."""
    match = re.fullmatch(r"\s*(\d+)\s*:\s*(\d+)\s*", text)
    if not match:
        raise DlqError(f"position {text!r} is not <partition>:<offset> (e.g. 0:42)")
    return int(match.group(1)), int(match.group(2))


@dataclass(frozen=True)
class DeadLetter:
    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    replayed: bool = False

    @classmethod
    def from_record(cls, record: ConsumerRecord[bytes, bytes]) -> DeadLetter:
        return cls(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            timestamp=record.timestamp,
            key=record.key,
            value=record.value,
            headers=tuple((k, bytes(v)) for k, v in (record.headers or ())),
        )

    @property
    def position(self) -> Position:
        return self.partition, self.offset

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value.decode(errors="replace")
        return None

    @property
    def original_topic(self) -> str | None:
        return self.header("dlq.original_topic")

    @property
    def original_partition(self) -> int | None:
        value = self.header("dlq.original_partition")
        return int(value) if value and value.isdigit() else None

    @property
    def original_offset(self) -> int | None:
        value = self.header("dlq.original_offset")
        return int(value) if value and value.isdigit() else None

    @property
    def consumer_group(self) -> str | None:
        return self.header("dlq.consumer_group")

    @property
    def error(self) -> str | None:
        return self.header("dlq.error")

    @property
    def failed_at(self) -> str | None:
        return self.header("dlq.failed_at")

    @property
    def event_type(self) -> str | None:
        """From the ``event_type`` header, else from the value when it is a JSON object."""
        found = self.header("event_type")
        if found:
            return found
        data = self._json()
        value = data.get("event_type") if isinstance(data, dict) else None
        return value if isinstance(value, str) else None

    @property
    def event_id(self) -> str | None:
        found = self.header("event_id")
        if found:
            return found
        data = self._json()
        value = data.get("event_id") if isinstance(data, dict) else None
        return value if isinstance(value, str) else None

    def _json(self) -> Any:
        if self.value is None:
            return None
        try:
            return orjson.loads(self.value)
        except orjson.JSONDecodeError:
            return None

    def replay_headers(self) -> list[tuple[str, bytes]]:
        """The original record's headers: everything but what the dead-lettering added."""
        return [(k, v) for k, v in self.headers if not k.startswith(DLQ_HEADER_PREFIX)]

    def summary(self) -> dict[str, Any]:
        return {
            "position": f"{self.partition}:{self.offset}",
            "partition": self.partition,
            "offset": self.offset,
            "original_topic": self.original_topic,
            "original_partition": self.original_partition,
            "original_offset": self.original_offset,
            "consumer_group": self.consumer_group,
            "error": self.error,
            "failed_at": self.failed_at,
            "event_type": self.event_type,
            "event_id": self.event_id,
            "replayed": self.replayed,
        }

    def detail(self) -> dict[str, Any]:
        """Everything, with the value as JSON when it is JSON, else as text."""
        data = self._json()
        value: Any
        if data is not None:
            value = data
        elif self.value is None:
            value = None
        else:
            value = self.value.decode(errors="replace")
        return {
            **self.summary(),
            "topic": self.topic,
            "timestamp_ms": self.timestamp,
            "key": self.key.decode(errors="replace") if self.key is not None else None,
            "headers": {k: v.decode(errors="replace") for k, v in self.headers},
            "value": value,
        }


# -- replay marks (committed offset + metadata of the replay group) ------------------------


@dataclass
class ReplayMark:
    """Dead letters below ``low`` are replayed, and so is every offset in ``extra``."""

    low: int = 0
    extra: set[int] = field(default_factory=set)

    def done(self, offset: int) -> bool:
        return offset < self.low or offset in self.extra

    def add(self, offsets: Iterable[int], begin: int) -> None:
        self.low = max(self.low, begin)
        self.extra.update(o for o in offsets if o >= self.low)
        while self.low in self.extra:
            self.extra.discard(self.low)
            self.low += 1

    def metadata(self) -> str:
        text = _MARK_PREFIX + _ranges(sorted(self.extra))
        if len(text) > _MAX_METADATA:
            raise DlqError(
                "too many scattered replays to record on one partition; replay the whole "
                "partition (without --only/--group) to compact them"
            )
        return text

    @classmethod
    def parse(cls, offset: int, metadata: str | None) -> ReplayMark:
        extra: set[int] = set()
        if metadata and metadata.startswith(_MARK_PREFIX):
            for part in filter(None, metadata[len(_MARK_PREFIX) :].split(",")):
                first, _, last = part.partition("-")
                extra.update(range(int(first), int(last or first) + 1))
        return cls(max(offset, 0), extra)


def _ranges(offsets: Sequence[int]) -> str:
    parts: list[str] = []
    i = 0
    while i < len(offsets):
        j = i
        while j + 1 < len(offsets) and offsets[j + 1] == offsets[j] + 1:
            j += 1
        parts.append(str(offsets[i]) if i == j else f"{offsets[i]}-{offsets[j]}")
        i = j + 1
    return ",".join(parts)


# -- Kafka access ---------------------------------------------------------------------------


async def _started_consumer(bootstrap: str, group_id: str | None = None) -> AIOKafkaConsumer:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=10_000,
    )
    try:
        await asyncio.wait_for(consumer.start(), timeout=_TIMEOUT)
    except (KafkaError, OSError, TimeoutError) as exc:
        with contextlib.suppress(Exception):
            await consumer.stop()
        raise DlqError(f"cannot reach Kafka at {bootstrap}: {type(exc).__name__} {exc}") from exc
    return consumer


async def _partitions(bootstrap: str, topic: str) -> list[TopicPartition]:
    """The topic's partitions; none when the topic does not exist (nothing dead yet)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    try:
        await asyncio.wait_for(admin.start(), timeout=_TIMEOUT)
        described = await admin.describe_topics([topic])
    except (KafkaError, OSError, TimeoutError) as exc:
        raise DlqError(f"cannot reach Kafka at {bootstrap}: {type(exc).__name__} {exc}") from exc
    finally:
        with contextlib.suppress(Exception):
            await admin.close()
    partitions = [
        p["partition"]
        for t in described
        if t.get("topic") == topic and t.get("error_code") == 0
        for p in t.get("partitions", [])
    ]
    return [TopicPartition(topic, p) for p in sorted(partitions)]


async def _read_all(
    consumer: AIOKafkaConsumer, tps: list[TopicPartition]
) -> tuple[list[DeadLetter], dict[TopicPartition, int]]:
    """Every record now in ``tps`` (from the earliest retained to the current end)."""
    if not tps:
        return [], {}
    consumer.assign(tps)
    begin = await consumer.beginning_offsets(tps)
    end = await consumer.end_offsets(tps)
    pending = {tp for tp in tps if end[tp] > begin[tp]}
    for tp in tps:
        consumer.seek(tp, begin[tp])
    letters: list[DeadLetter] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _TIMEOUT
    while pending:
        if loop.time() > deadline:
            raise DlqError("timed out reading the dead letter topic")
        batch = await consumer.getmany(*pending, timeout_ms=500, max_records=1000)
        for tp, records in batch.items():
            letters.extend(DeadLetter.from_record(r) for r in records if r.offset < end[tp])
        for tp in list(pending):
            if await consumer.position(tp) >= end[tp]:
                pending.discard(tp)
    letters.sort(key=lambda d: (d.partition, d.offset))
    return letters, {tp: begin[tp] for tp in tps}


async def _marks(
    bootstrap: str, replay_group: str, tps: list[TopicPartition]
) -> dict[int, ReplayMark]:
    if not tps:
        return {}
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    try:
        await asyncio.wait_for(admin.start(), timeout=_TIMEOUT)
        committed = await admin.list_consumer_group_offsets(replay_group, partitions=tps)
    except (KafkaError, OSError, TimeoutError) as exc:
        raise DlqError(f"cannot read replay progress of group {replay_group}: {exc!r}") from exc
    finally:
        with contextlib.suppress(Exception):
            await admin.close()
    return {
        tp.partition: ReplayMark.parse(meta.offset, meta.metadata)
        for tp, meta in committed.items()
        if meta is not None
    }


@dataclass
class Listing:
    topic: str
    letters: list[DeadLetter]
    exists: bool

    @property
    def count(self) -> int:
        return len(self.letters)

    @property
    def pending(self) -> int:
        return sum(1 for d in self.letters if not d.replayed)


async def list_dead_letters(
    bootstrap: str,
    dlq_topic: str,
    *,
    consumer_group: str | None = None,
    replay_group: str = REPLAY_GROUP,
) -> Listing:
    """Every dead letter in ``dlq_topic`` (of one consumer group if given), marked replayed
    or not. A DLQ topic that does not exist simply holds no dead letters."""
    tps = await _partitions(bootstrap, dlq_topic)
    consumer = await _started_consumer(bootstrap)
    try:
        letters, _begin = await _read_all(consumer, tps)
    except KafkaError as exc:
        raise DlqError(f"reading {dlq_topic} failed: {exc!r}") from exc
    finally:
        await consumer.stop()
    marks = await _marks(bootstrap, replay_group, tps)
    out = [
        _marked(d, marks)
        for d in letters
        if consumer_group is None or d.consumer_group == consumer_group
    ]
    return Listing(dlq_topic, out, exists=bool(tps))


def _marked(letter: DeadLetter, marks: dict[int, ReplayMark]) -> DeadLetter:
    mark = marks.get(letter.partition)
    if mark is not None and mark.done(letter.offset):
        return DeadLetter(**{**letter.__dict__, "replayed": True})
    return letter


async def get_dead_letter(
    bootstrap: str, dlq_topic: str, position: Position, *, replay_group: str = REPLAY_GROUP
) -> DeadLetter:
    partition, offset = position
    tps = await _partitions(bootstrap, dlq_topic)
    tp = TopicPartition(dlq_topic, partition)
    if tp not in tps:
        raise DlqError(
            f"no dead letter at {partition}:{offset}: {dlq_topic} has no partition {partition}"
        )
    consumer = await _started_consumer(bootstrap)
    try:
        consumer.assign([tp])
        begin = (await consumer.beginning_offsets([tp]))[tp]
        end = (await consumer.end_offsets([tp]))[tp]
        if not begin <= offset < end:
            raise DlqError(
                f"no dead letter at {partition}:{offset} in {dlq_topic} "
                f"(partition {partition} holds offsets {begin}..{end - 1})"
                if end > begin
                else f"no dead letter at {partition}:{offset}: partition {partition} is empty"
            )
        consumer.seek(tp, offset)
        record = await asyncio.wait_for(consumer.getone(tp), timeout=_TIMEOUT)
    except (KafkaError, TimeoutError) as exc:
        raise DlqError(f"reading {dlq_topic} failed: {exc!r}") from exc
    finally:
        await consumer.stop()
    marks = await _marks(bootstrap, replay_group, [tp])
    return _marked(DeadLetter.from_record(record), marks)


@dataclass
class ReplayReport:
    topic: str
    replayed: list[DeadLetter]
    already_replayed: list[DeadLetter]
    unreplayable: list[tuple[DeadLetter, str]]
    dry_run: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "dry_run": self.dry_run,
            "replayed": [d.summary() for d in self.replayed],
            "already_replayed": [d.summary() for d in self.already_replayed],
            "unreplayable": [{**d.summary(), "reason": why} for d, why in self.unreplayable],
        }


async def replay_dead_letters(
    bootstrap: str,
    dlq_topic: str,
    *,
    consumer_group: str | None = None,
    only: Sequence[Position] | None = None,
    dry_run: bool = False,
    replay_group: str = REPLAY_GROUP,
) -> ReplayReport:
    """Re-publish not-yet-replayed dead letters to their original topics, then record them
    as replayed. ``consumer_group`` / ``only`` narrow the selection; asking for a position
    that holds no dead letter is an error (nothing is replayed then)."""
    tps = await _partitions(bootstrap, dlq_topic)
    consumer = await _started_consumer(bootstrap, group_id=replay_group)
    try:
        letters, begin = await _read_all(consumer, tps)
        marks = await _marks(bootstrap, replay_group, tps)
        wanted = set(only or ())
        found = {d.position for d in letters}
        missing = sorted(wanted - found)
        if missing:
            where = ", ".join(f"{p}:{o}" for p, o in missing)
            raise DlqError(f"no dead letter at {where} in {dlq_topic}")
        if consumer_group is not None and wanted:
            foreign = [
                d for d in letters if d.position in wanted and d.consumer_group != consumer_group
            ]
            if foreign:
                where = ", ".join(f"{d.partition}:{d.offset} ({d.consumer_group})" for d in foreign)
                raise DlqError(f"dead letters of another consumer group requested: {where}")
        selected = [
            _marked(d, marks)
            for d in letters
            if (consumer_group is None or d.consumer_group == consumer_group)
            and (not wanted or d.position in wanted)
        ]
        report = ReplayReport(dlq_topic, [], [], [], dry_run)
        for letter in selected:
            if letter.replayed:
                report.already_replayed.append(letter)
            elif not letter.original_topic:
                report.unreplayable.append((letter, "no dlq.original_topic header"))
            else:
                report.replayed.append(letter)
        if dry_run or not report.replayed:
            return report
        await _publish(bootstrap, report.replayed)
        offsets: dict[TopicPartition, tuple[int, str]] = {}
        for tp in tps:
            done = [d.offset for d in report.replayed if d.partition == tp.partition]
            if not done:
                continue
            mark = marks.get(tp.partition, ReplayMark())
            mark.add(done, begin[tp])
            offsets[tp] = (mark.low, mark.metadata())
        await consumer.commit(offsets)
        return report
    except KafkaError as exc:
        raise DlqError(f"replaying {dlq_topic} failed: {exc!r}") from exc
    finally:
        await consumer.stop()


async def _publish(bootstrap: str, letters: Sequence[DeadLetter]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, enable_idempotence=True, acks="all", client_id="dlq-replay"
    )
    try:
        await asyncio.wait_for(producer.start(), timeout=_TIMEOUT)
    except (KafkaError, OSError, TimeoutError) as exc:
        with contextlib.suppress(Exception):
            await producer.stop()
        raise DlqError(f"cannot reach Kafka at {bootstrap}: {exc!r}") from exc
    try:
        futures = []
        for letter in letters:
            assert letter.original_topic is not None
            futures.append(
                await producer.send(
                    letter.original_topic,
                    value=letter.value,
                    key=letter.key,
                    headers=letter.replay_headers(),
                )
            )
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
