"""Scratch topic prefixes name their owner, and only an owner that is gone lets them go
(``leadflow.testing.topics``): the pure half of the session-start sweep."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

from leadflow.testing.topics import (
    BORN_FORMAT,
    MAX_AGE,
    WHERE,
    Owner,
    is_stale,
    owner_of,
    scratch_prefix,
    session_prefix,
    stale_sessions,
)

NOW = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)


def test_a_scratch_prefix_names_this_process_and_reads_back() -> None:
    prefix = scratch_prefix("abc123")
    assert prefix.startswith(session_prefix()) and prefix.endswith("abc123.")
    owner = owner_of(prefix + "leadflow.sla-monitor.dlq")
    assert owner is not None
    assert (owner.session, owner.where, owner.pid) == (session_prefix(), WHERE, os.getpid())
    # Born when this process first took a prefix (the session's start, minutes ago in a
    # whole suite), read back to the second, and well within the sweep's age limit.
    assert session_prefix() == f"t-{owner.born.strftime(BORN_FORMAT)}-{WHERE}-{os.getpid()}-"
    assert timedelta(0) <= datetime.now(UTC) - owner.born < MAX_AGE


def test_two_scratch_prefixes_of_one_process_differ_and_share_the_session() -> None:
    a, b = scratch_prefix(), scratch_prefix()
    assert a != b and owner_of(a) == owner_of(b)


def test_names_of_the_platform_and_other_prefixes_have_no_owner() -> None:
    for name in [
        "leadflow.intake",
        "leadflow.scoring.dlq",
        "prod.leadflow.routing",
        "t5d1905b821.leadflow.sla-monitor",  # the old per-test prefix: no owner to check
        "benchpi90c2c790.leadflow.intake",
        "t-20261307t000000-0123abcd-12-x.leadflow.intake",  # month 13: not a time
        "t-20261207t093000-0123abcd-12-.leadflow.intake",  # no token
        "__consumer_offsets",
    ]:
        assert owner_of(name) is None, name


def owner(where: str = WHERE, age: timedelta = timedelta(minutes=10)) -> Owner:
    return Owner("t-x-", NOW - age, where, 4242)


def test_an_owner_here_whose_process_is_gone_is_stale_at_once() -> None:
    assert is_stale(owner(), NOW, alive=False)
    assert not is_stale(owner(), NOW, alive=True)


def test_an_owner_elsewhere_is_stale_only_after_the_maximum_age() -> None:
    elsewhere = "ffffffff" if WHERE != "ffffffff" else "00000000"
    # its pid means nothing here: neither a dead nor a live one decides
    assert not is_stale(owner(elsewhere), NOW, alive=False)
    assert not is_stale(owner(elsewhere, MAX_AGE - timedelta(minutes=1)), NOW, alive=False)
    assert is_stale(owner(elsewhere, MAX_AGE + timedelta(minutes=1)), NOW, alive=True)


def test_a_live_owner_here_older_than_the_maximum_age_is_stale() -> None:
    # a reused pid would otherwise keep a killed run's topics for ever
    assert is_stale(owner(age=MAX_AGE + timedelta(seconds=1)), NOW, alive=True)


def test_stale_sessions_keep_this_process_and_drop_a_dead_one() -> None:
    born = datetime.now(UTC).strftime("%Y%m%dt%H%M%S")
    dead_pid = 2**22 + 17  # above Linux's pid_max ceiling: no such process
    dead = f"t-{born}-{WHERE}-{dead_pid}-"
    names = [
        f"{scratch_prefix()}leadflow.intake",
        f"{dead}abc.leadflow.intake",
        f"{dead}abc.leadflow.analytics",  # a group
        "leadflow.intake",
    ]
    assert stale_sessions(names) == {dead}


def test_the_legacy_pattern_takes_old_test_and_bench_prefixes_only() -> None:
    from leadflow.testing.topics import LEGACY

    for old in [
        "t5d1905b821.leadflow.sla-monitor",
        "benchpi90c2c790.leadflow.intake",
        "benchsla1234abcd.leadflow.sla",
        "bx1234abcd.leadflow.intake",
    ]:
        assert LEGACY.match(old), old
    for name in ["leadflow.intake", "prod.leadflow.intake", "tenant.leadflow.intake", "t-x."]:
        assert not LEGACY.match(name), name


async def test_a_broker_that_does_not_answer_the_sweep_switches_the_reaper_off() -> None:
    import time

    from leadflow.devstack.procs import free_port
    from leadflow.testing.topics import Reaper

    reaper = Reaper(f"127.0.0.1:{free_port()}", timeout=5)  # nothing listens there
    started = time.monotonic()
    swept = await reaper.start()
    assert (swept.topics, reaper.enabled) == ([], False)
    assert (await reaper.close()).topics == []  # no second wait on a broker that is not there
    assert time.monotonic() - started < 10


def test_a_sweep_takes_the_old_prefixes_only_when_asked() -> None:
    from leadflow.testing.topics import sweepable

    born = datetime.now(UTC).strftime("%Y%m%dt%H%M%S")
    dead = f"t-{born}-{WHERE}-{2**22 + 17}-"
    names = [
        f"{dead}abc.leadflow.intake",
        "t5d1905b821.leadflow.intake",
        "t5d1905b821.leadflow.analytics",  # its group
        "bench1234abcd.leadflow.routing",
        f"{scratch_prefix()}leadflow.intake",  # this process: running
        "leadflow.intake",
        "leadflow.analytics",
    ]
    assert sweepable(names) == {dead}
    assert sweepable(names, legacy=True) == {dead, "t5d1905b821.", "bench1234abcd."}
