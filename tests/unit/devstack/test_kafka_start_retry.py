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


# Logs the broker's "N/M completed" start-up lines into its broker.log (argv[2]), one every
# 0.2 s for argv[3] lines, then opens the port: a broker loading a large data directory.
LOADS = (
    "import signal, socket, sys, time\n"
    "n = int(sys.argv[3])\n"
    "for i in range(1, n + 1):\n"
    "    with open(sys.argv[2], 'a') as f:\n"
    "        f.write(f'INFO Completed load of Log(...) in 5ms ({i}/{n} completed in /d)\\n')\n"
    "    time.sleep(0.2)\n"
    "s = socket.socket(); s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen(); signal.pause()"
)


def test_a_broker_loading_past_the_timeout_is_waited_for_and_its_progress_told(
    tmp_path: Path,
) -> None:
    broker = ScriptedBroker(tmp_path / "kafka", [])
    broker.plays = [[sys.executable, "-c", LOADS, "PORT", str(broker.log_path), "30"]]
    told: list[str] = []
    broker.report, broker.report_every = told.append, 1.0
    try:
        broker.start(timeout=3)  # 6 s of loading: twice the timeout, never idle that long
        assert broker.launched == 1 and broker.running
        assert any("partitions loaded" in t and "/30" in t for t in told), told
    finally:
        broker.kill()


def test_a_stalled_broker_names_its_partitions_and_the_directory_to_remove(
    tmp_path: Path,
) -> None:
    logs = tmp_path / "kafka" / "kraft-logs"
    for i in range(2100):  # what test runs used to leave on the developer's broker
        (logs / f"t-20261207t090000-0123abcd-42-x{i}.leadflow.intake-0").mkdir(parents=True)
    for name in ("leadflow.intake-0", "leadflow.intake-1", "__consumer_offsets-0"):
        (logs / name).mkdir()
    broker = ScriptedBroker(
        tmp_path / "kafka", [[sys.executable, "-c", "import signal; signal.pause()"]]
    )
    with pytest.raises(KafkaUnavailable) as failed:
        broker.start(timeout=1)
    message = str(failed.value)
    assert "still starting after 1s without progress" in message
    assert "holds 2,102 partitions, 2,100 of them of test runs" in message
    assert f"remove {tmp_path / 'kafka'}" in message
    assert failed.value.remove == tmp_path / "kafka"
    assert broker.launched == 1


def test_a_broker_out_of_heap_says_so(tmp_path: Path) -> None:
    oom = "import sys; print('Exception in thread \"main\" java.lang.OutOfMemoryError: Java heap space'); sys.exit(1)"
    broker = ScriptedBroker(tmp_path / "kafka", [[sys.executable, "-c", oom]])
    with pytest.raises(KafkaUnavailable) as failed:
        broker.start(timeout=20)
    assert "exited with code 1" in str(failed.value)
    assert "ran out of heap" in str(failed.value) and "OutOfMemoryError" in str(failed.value)
    assert failed.value.remove == tmp_path / "kafka"


def test_a_broker_that_just_exits_is_not_told_to_start_afresh(tmp_path: Path) -> None:
    broker = ScriptedBroker(tmp_path / "kafka", [exits(3)])
    with pytest.raises(KafkaUnavailable) as failed:
        broker.start(timeout=20)
    assert failed.value.remove is None and "start afresh" not in str(failed.value)
