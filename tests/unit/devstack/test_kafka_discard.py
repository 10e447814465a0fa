"""A private broker's topics go with it (``KafkaBroker.discard_data``): its data directory's
``kraft-logs``, not its logs, which a failed run's post-mortem reads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from leadflow.devstack.kafka import KafkaBroker


def test_discard_data_removes_the_topics_and_keeps_the_logs(tmp_path: Path) -> None:
    broker = KafkaBroker(tmp_path / "kafka")
    (tmp_path / "kafka" / "kraft-logs" / "t-x.leadflow.intake-0").mkdir(parents=True)
    broker.log_path.write_text("INFO started\n")
    broker.discard_data()
    assert not (tmp_path / "kafka" / "kraft-logs").exists()
    assert broker.log_path.read_text() == "INFO started\n"


def test_a_running_broker_keeps_its_data(tmp_path: Path) -> None:
    broker = KafkaBroker(tmp_path / "kafka")
    (tmp_path / "kafka" / "kraft-logs").mkdir(parents=True)
    broker.proc = subprocess.Popen([sys.executable, "-c", "import signal; signal.pause()"])
    try:
        with pytest.raises(RuntimeError, match="stop the broker"):
            broker.discard_data()
        assert (tmp_path / "kafka" / "kraft-logs").exists()
    finally:
        broker.proc.kill()
        broker.proc.wait()
