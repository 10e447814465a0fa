"""Scratch topic prefixes of tests and benchmarks, and deleting what they leave on a broker.

Tests isolate themselves on a shared broker with a topic prefix; none used to delete its
topics, and a developer's broker (``make infra-up`` / ``make run``) grew to thousands of
partitions after a few ``make test`` runs, until it no longer started in time. Here:

- ``scratch_prefix()``: a prefix that names its owner, ``t-<born>-<where>-<pid>-<token>.``
  (``born`` the owning process's start, UTC ``%Y%m%dt%H%M%S``; ``where`` this machine's boot
  and PID namespace, hashed; ``pid`` the owning process). Every prefix of one process starts
  with ``session_prefix()``.
- ``delete_prefixed``: the topics and consumer groups under some prefixes, in one call each.
- ``sweep``: the scratch prefixes left by runs that were killed before deleting them.
- ``Reaper``: a test session's deleter (``tests/conftest.py``): the session-start sweep, and
  every topic and group of the session deleted at its end, in one call.

Why a sweep can run while other test sessions use the same broker: a prefix is stale only
when its owner provably is gone — same machine and PID namespace (``where``) and its
``pid`` no longer exists — or, for an owner elsewhere that cannot be checked (or whose pid
a new process may have taken), when it was born more than ``MAX_AGE`` ago (a test session
lasts minutes, a benchmark an hour). Only names matching ``PATTERN`` are candidates: never
``leadflow.*`` or any deployment prefix. A timestamp alone would have meant either waiting
hours for a killed run's topics or risking a long session's; a pid alone, deleting the topics
of a session on another machine (CI runners sharing one broker) whose pid happens to be free
here.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import socket
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.protocol.admin import DeleteGroupsRequest

log = logging.getLogger("leadflow.testing.topics")

PATTERN = re.compile(r"^(t-(\d{8}t\d{6})-([0-9a-f]{8})-(\d+)-)[0-9a-z]+\.")
# The prefixes tests and benchmarks used before they named their owner: nothing tells a
# running session's from a killed one's, so only ``--legacy``, by hand, deletes them.
LEGACY = re.compile(r"^(t|bench[a-z]*|bimp|bx)[0-9a-f]{8,10}\.")
MAX_AGE = timedelta(hours=6)
CHUNK = 1000  # topics per DeleteTopics call: a KRaft controller limits the records of one
BORN_FORMAT = "%Y%m%dt%H%M%S"


def _where() -> str:
    """This boot of this machine and this PID namespace: where a ``pid`` means a process.

    A hostname is not enough (containers on one host may share it and not their PIDs)."""
    parts = [socket.gethostname()]
    with contextlib.suppress(OSError):
        with open("/proc/sys/kernel/random/boot_id") as f:
            parts.append(f.read().strip())
        parts.append(str(os.stat("/proc/self/ns/pid").st_ino))
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:8]


WHERE = _where()
_session: str | None = None


def session_prefix() -> str:
    """What every scratch prefix of this process starts with (fixed on first use)."""
    global _session
    if _session is None:
        born = datetime.now(UTC).strftime(BORN_FORMAT)
        _session = f"t-{born}-{WHERE}-{os.getpid()}-"
    return _session


def scratch_prefix(token: str | None = None) -> str:
    """A fresh topic prefix (``<session_prefix><token>.``) owned by this process."""
    token = token or uuid.uuid4().hex[:10]
    if not re.fullmatch(r"[0-9a-z]+", token):
        raise ValueError(f"a scratch token is lower-case letters and digits: {token!r}")
    return f"{session_prefix()}{token}."


@dataclass(frozen=True)
class Owner:
    """Who made a scratch topic: the session part of its name, read back."""

    session: str
    born: datetime
    where: str
    pid: int


def owner_of(name: str) -> Owner | None:
    """The owner of a scratch topic or group name; ``None`` for any other name."""
    match = PATTERN.match(name)
    if match is None:
        return None
    session, born, where, pid = match.groups()
    try:
        when = datetime.strptime(born, BORN_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None
    return Owner(session, when, where, int(pid))


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def is_stale(owner: Owner, now: datetime, where: str = WHERE, alive: bool = True) -> bool:
    """Whether an owner's topics may go: ``alive`` is whether ``owner.pid`` exists here, which
    only means something when ``owner.where`` is ``where``."""
    if now - owner.born > MAX_AGE:
        return True
    return owner.where == where and not alive


def stale_sessions(names: Iterable[str], now: datetime | None = None) -> set[str]:
    """The session prefixes among ``names`` whose owners are gone (see the module doc)."""
    now = now or datetime.now(UTC)
    owners = {o.session: o for o in map(owner_of, names) if o is not None}
    return {
        session
        for session, o in owners.items()
        if is_stale(o, now, alive=o.where == WHERE and pid_alive(o.pid))
    }


def sweepable(names: Iterable[str], now: datetime | None = None, legacy: bool = False) -> set[str]:
    """The prefixes a sweep deletes among ``names``: the stale sessions', and with ``legacy``
    the owner-less old ones (``LEGACY``)."""
    names = list(names)
    prefixes = stale_sessions(names, now)
    if legacy:
        prefixes |= {m[0] for m in map(LEGACY.match, names) if m is not None}
    return prefixes


@dataclass
class Deleted:
    topics: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def __str__(self) -> str:
        return f"{len(self.topics)} topics, {len(self.groups)} groups in {self.seconds:.2f}s"


def _under(name: str, prefixes: Iterable[str]) -> bool:
    return any(name.startswith(p) for p in prefixes)


async def _delete(
    admin: AIOKafkaAdminClient,
    prefixes: set[str] | None,
    now: datetime | None,
    legacy: bool = False,
) -> Deleted:
    """One pass: list, pick (``prefixes``, or the stale sessions when ``None``, and the
    legacy prefixes when asked), delete."""
    started = time.monotonic()
    # One metadata request for both (list_topics and describe_cluster each make their own,
    # of every topic: half a second apiece on a broker holding thousands).
    metadata = (await admin._get_cluster_metadata()).to_object()
    topics = [t["topic"] for t in metadata["topics"]]
    brokers = [b["node_id"] for b in metadata["brokers"]]
    groups_by_broker = {
        broker: [g[0] for g in await admin.list_consumer_groups([broker])] for broker in brokers
    }
    if prefixes is None:
        prefixes = sweepable(
            topics + [g for gs in groups_by_broker.values() for g in gs], now, legacy
        )
    done = Deleted()
    if not prefixes:
        return done
    doomed = [t for t in topics if _under(t, prefixes)]
    for i in range(0, len(doomed), CHUNK):  # one call; more only past KRaft's per-call limit
        answer = await admin.delete_topics(doomed[i : i + CHUNK])
        done.topics += _succeeded(answer.topic_error_codes, "topics")
    for broker, groups in groups_by_broker.items():  # a group is deleted by its coordinator
        mine = [g for g in groups if _under(g, prefixes)]
        if mine:
            answer = await admin._send_request(DeleteGroupsRequest(mine), broker)
            done.groups += _succeeded(answer.results, "groups")
    done.seconds = time.monotonic() - started
    return done


def _succeeded(results: list[tuple[str, int]], what: str) -> list[str]:
    """The names a delete call answered with no error; the others are logged (a group with
    members left is one: a session still running under a reused pid, say)."""
    failed = {name: code for name, code, *_ in results if code}
    if failed:
        log.warning("could not delete %d %s: %s", len(failed), what, dict(list(failed.items())[:5]))
    return [name for name, code, *_ in results if not code]


async def _with_admin(
    bootstrap: str,
    prefixes: set[str] | None,
    timeout: float,
    now: datetime | None = None,
    legacy: bool = False,
) -> Deleted:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    async with asyncio.timeout(timeout):
        await admin.start()
        try:
            return await _delete(admin, prefixes, now, legacy)
        finally:
            await admin.close()


async def delete_prefixed(bootstrap: str, prefixes: Iterable[str], timeout: float = 30) -> Deleted:
    """Delete every topic and consumer group under ``prefixes`` (one DeleteTopics call, one
    DeleteGroups per coordinator). Raises on a slow or absent broker: callers that must not
    fail (teardowns) use ``delete_quietly``."""
    wanted = set(prefixes)
    if not wanted:
        return Deleted()
    return await _with_admin(bootstrap, wanted, timeout)


async def sweep(
    bootstrap: str, timeout: float = 30, now: datetime | None = None, legacy: bool = False
) -> Deleted:
    """Delete the scratch topics and groups of owners that are gone (see the module doc);
    ``legacy``: the old owner-less prefixes too (``LEGACY``: by hand, never in a session)."""
    return await _with_admin(bootstrap, None, timeout, now, legacy)


async def delete_quietly(bootstrap: str, prefixes: Iterable[str], timeout: float = 30) -> Deleted:
    """``delete_prefixed`` that logs instead of raising: a teardown never fails on it."""
    try:
        return await delete_prefixed(bootstrap, prefixes, timeout)
    except Exception as exc:  # logged: whatever is left, the next sweep takes
        log.warning("could not delete the topics of %s on %s: %r", prefixes, bootstrap, exc)
        return Deleted()


class Reaper:
    """A test session's deleter.

    ``await start()`` sweeps what killed runs left; ``await close()`` deletes everything of
    this session (every ``scratch_prefix`` of this process) in one call. One call at the
    end, not one per test: deleting topics while the next test runs measured slower on the
    shared 2-core machines (the broker closes and flushes each deleted partition's log
    while the tests' Postgres and Kafka wait on the same disk), and the end's call also
    takes topics that something of a test (a producer still flushing) re-created after it.
    Nothing here raises: a slow or absent broker is logged, and the next session's sweep
    takes what was left."""

    def __init__(self, bootstrap: str, timeout: float = 20, close_timeout: float = 120) -> None:
        self.bootstrap = bootstrap
        self.timeout = timeout
        self.close_timeout = close_timeout
        self.swept = Deleted()
        self.enabled = True

    async def start(self) -> Deleted:
        """The sweep. A broker that does not answer it switches the reaper off: a session
        of tests that need no Kafka does not wait on it again at its end, and a session
        whose broker was away leaves its topics to the next session's sweep (its pid is
        gone by then)."""
        try:
            self.swept = await sweep(self.bootstrap, self.timeout)
        except Exception as exc:
            self.enabled = False
            log.warning(
                "the sweep of stale test topics on %s failed (%r): this session deletes none",
                self.bootstrap,
                exc,
            )
        return self.swept

    async def close(self) -> Deleted:
        if not self.enabled:
            return Deleted()
        return await delete_quietly(self.bootstrap, [session_prefix()], self.close_timeout)


def main(argv: list[str] | None = None) -> int:
    """``python -m leadflow.testing.topics``: the sweep, by hand (README: Troubleshooting)."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m leadflow.testing.topics", description=main.__doc__
    )
    parser.add_argument(
        "--bootstrap",
        default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
        help="the broker (default $KAFKA_BOOTSTRAP_SERVERS, else 127.0.0.1:9092)",
    )
    parser.add_argument(
        "--legacy",
        action="store_true",
        help="also the prefixes tests and benchmarks used before they named their owner "
        "(t<hex>., bench<hex>., ...): only while no older checkout's tests run on the broker",
    )
    parser.add_argument("--timeout", type=float, default=120, help="seconds (default 120)")
    args = parser.parse_args(argv)
    done = asyncio.run(sweep(args.bootstrap, args.timeout, legacy=args.legacy))
    print(f"deleted {done} on {args.bootstrap}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
