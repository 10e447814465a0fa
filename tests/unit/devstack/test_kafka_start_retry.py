"""The local broker is started again when its JVM exits before opening its port (killed
from outside, or its port taken meanwhile on a shared machine), and the error names how it
ended. A stand-in process plays the JVM: no Java here."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from leadflow.devstack import kafka
from leadflow.devstack.kafka import KafkaBroker, KafkaUnavailable

# Opens the broker's port and keeps it open until killed.
LISTEN = (
    "import signal, socket, sys; s = socket.socket(); s.bind(('127.0.0.1', int(sys.argv[1]))); "
    "s.listen(); signal.pause()"
)


class ScriptedBroker(KafkaBroker):
    """Runs ``plays`` in turn instead of the JVM; readiness is the port alone."""

    def __init__(self, data_dir: Path, plays: list[list[str]]) -> None:
        super().__init__(data_dir)
        self.plays = plays
        self.launched = 0

    def format(self, jars: Path) -> None:
        pass

    def _java(self, jars: Path, main: str, *args: str) -> list[str]:
        play = self.plays[min(self.launched, len(self.plays) - 1)]
        self.launched += 1
        return [arg.replace("PORT", str(self.port)) for arg in play]

    def wait_ready(self, timeout: float = 60.0) -> None:
        pass


@pytest.fixture(autouse=True)
def no_jars(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(kafka, "ensure_jars", lambda *a, **k: tmp_path)


def exits(code: int) -> list[str]:
    return [sys.executable, "-c", f"raise SystemExit({code})"]


def listens() -> list[str]:
    return [sys.executable, "-c", LISTEN, "PORT"]


def test_a_broker_that_exits_during_startup_is_started_once_more(tmp_path: Path) -> None:
    broker = ScriptedBroker(tmp_path / "kafka", [exits(3), listens()])
    try:
        broker.start(timeout=20)
        assert broker.launched == 2
        assert broker.proc is not None and broker.proc.poll() is None
    finally:
        broker.kill()


def test_when_every_attempt_exits_the_error_says_how(tmp_path: Path) -> None:
    broker = ScriptedBroker(tmp_path / "kafka", [exits(3)])
    with pytest.raises(KafkaUnavailable, match=r"exited with code 3"):
        broker.start(timeout=20)
    assert broker.launched == 2


def test_a_broker_still_starting_at_the_timeout_is_not_started_again(tmp_path: Path) -> None:
    slow = [sys.executable, "-c", "import signal; signal.pause()"]  # never opens the port
    broker = ScriptedBroker(tmp_path / "kafka", [slow])
    with pytest.raises(KafkaUnavailable, match=r"still starting after 1s"):
        broker.start(timeout=1)
    assert broker.launched == 1
