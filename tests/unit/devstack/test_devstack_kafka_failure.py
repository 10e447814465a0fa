"""`make run` whose broker cannot start says why and what to remove, and stops cleanly."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from leadflow.devstack import __main__ as devstack
from leadflow.devstack.kafka import KafkaUnavailable


@pytest.fixture(autouse=True)
def signals_back() -> Iterator[None]:
    """``run`` takes SIGINT and SIGTERM and ignores them while it stops: give them back."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def fails_with(error: KafkaUnavailable) -> Callable[[devstack.Devstack], None]:
    def start_infra(self: devstack.Devstack) -> None:
        raise error

    return start_infra


def test_a_broker_too_full_to_start_points_at_make_clean(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "kafka"
    error = KafkaUnavailable("Kafka did not open port 9092 (...): 15,000 partitions", remove=data)
    monkeypatch.setattr(devstack.Devstack, "start_infra", fails_with(error))
    assert devstack.main(["--home", str(tmp_path), "run"]) == 2
    err = capsys.readouterr().err
    assert "15,000 partitions" in err
    assert f"`make clean` removes all of {tmp_path}" in err and f"`rm -rf {data}`" in err
    assert not (tmp_path / "ready").exists()


def test_a_broker_that_failed_for_another_reason_does_not_suggest_removing_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    error = KafkaUnavailable("`java` was not found on PATH")
    monkeypatch.setattr(devstack.Devstack, "start_infra", fails_with(error))
    assert devstack.main(["--home", str(tmp_path), "run"]) == 2
    err = capsys.readouterr().err
    assert "`java` was not found" in err and "make clean" not in err
