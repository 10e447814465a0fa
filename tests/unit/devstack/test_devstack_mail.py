"""make run's mail catcher: Mailpit from the cache, or the Python catcher with the reason."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from leadflow.devstack import mail


def test_without_go_the_python_catcher_runs_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LEADFLOW_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(mail.Path, "exists", lambda self: False)
    command, kind = mail.mail_command(1025, 8025, tmp_path / "data")
    assert kind == "Python mail catcher"
    assert command == [
        sys.executable,
        "-m",
        "leadflow.devstack.mailcatcher",
        "--smtp-port",
        "1025",
        "--ui-port",
        "8025",
    ]
    assert "Go is not installed" in capsys.readouterr().out


def test_a_cached_mailpit_is_used_as_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADFLOW_CACHE_DIR", str(tmp_path))
    binary = mail.mailpit_path()
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\n")
    command, kind = mail.mail_command(1025, 8025, tmp_path / "data")
    assert kind == f"Mailpit {mail.MAILPIT_VERSION}"
    assert command[:5] == [str(binary), "--smtp", "127.0.0.1:1025", "--listen", "127.0.0.1:8025"]
