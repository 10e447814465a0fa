"""`make run` whose broker cannot start says why and what to remove, and stops cleanly."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

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


def plays(monkeypatch: pytest.MonkeyPatch, script: str) -> None:
    """``infra-up``'s background child runs ``script`` instead of ``serve-infra``."""
    real = subprocess.Popen

    def popen(command: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        return real([sys.executable, "-c", script, command[-2]], **kwargs)  # argv[1]: home

    monkeypatch.setattr(devstack.subprocess, "Popen", popen)


SLOW_THEN_READY = """
import pathlib, sys
home = pathlib.Path(sys.argv[1])
for n in (1000, 2000):
    print(f"[devstack] Kafka is still starting after 15s: {n:,}/3,000 partitions loaded", flush=True)
(home / "dev.env").write_text("KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092\\n")
(home / "ready").write_text("ready")
"""

GIVES_UP = """
import sys
print("[devstack] starting Kafka on 127.0.0.1:9092 ...", flush=True)
print("[devstack] Kafka did not open port 9092 (...): to start afresh, remove x", file=sys.stderr)
print("[devstack] `make clean` removes all of x", file=sys.stderr)
sys.exit(2)
"""


def test_infra_up_passes_on_how_a_slow_start_goes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    plays(monkeypatch, SLOW_THEN_READY)
    assert devstack.main(["--home", str(tmp_path), "infra-up"]) == 0
    out = capsys.readouterr().out
    assert "1,000/3,000 partitions loaded" in out and "2,000/3,000 partitions loaded" in out
    assert "KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092" in out


def test_infra_up_says_why_the_broker_did_not_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    plays(monkeypatch, GIVES_UP)
    assert devstack.main(["--home", str(tmp_path), "infra-up"]) == 2
    err = capsys.readouterr().err
    assert "Kafka did not open port 9092" in err and "`make clean`" in err
