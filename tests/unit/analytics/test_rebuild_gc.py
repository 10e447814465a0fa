"""The replay pauses the cycle collector only while it runs, nested replays included."""

from __future__ import annotations

import gc

from leadflow.analytics.rebuild import _no_cycle_collection


def test_cycle_collector_is_paused_during_a_replay_and_resumed_after_the_last() -> None:
    assert gc.isenabled()
    with _no_cycle_collection():
        assert not gc.isenabled()
        with _no_cycle_collection():  # a catch-up running beside a rebuild
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer replay still runs
    assert gc.isenabled()


def test_cycle_collector_resumes_when_a_replay_fails() -> None:
    try:
        with _no_cycle_collection():
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert gc.isenabled()


def test_a_collector_disabled_by_the_host_stays_disabled() -> None:
    gc.disable()
    try:
        with _no_cycle_collection():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_overlapping_replays_resume_the_collector_when_the_last_one_ends() -> None:
    first, second = _no_cycle_collection(), _no_cycle_collection()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)  # the first to start ends first
    assert not gc.isenabled()
    second.__exit__(None, None, None)
    assert gc.isenabled()
