"""``make bench`` never overwrites a report already on record for the day."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from bench.__main__ import new_report_path

DAY = dt.date(2026, 11, 23)


def test_the_first_report_of_a_day_is_named_by_the_date(tmp_path: Path) -> None:
    assert new_report_path(tmp_path, DAY) == tmp_path / "2026-11-23.md"


def test_later_reports_of_the_day_take_the_next_letter(tmp_path: Path) -> None:
    for name in ("2026-11-23.md", "2026-11-23b.md", "2026-11-22c.md"):
        (tmp_path / name).write_text("on record")
    assert new_report_path(tmp_path, DAY) == tmp_path / "2026-11-23c.md"
    assert (tmp_path / "2026-11-23.md").read_text() == "on record"


def test_a_day_with_every_letter_taken_asks_for_a_path(tmp_path: Path) -> None:
    for suffix in ["", *"bcdefghijklmnopqrstuvwxyz"]:
        (tmp_path / f"2026-11-23{suffix}.md").write_text("on record")
    with pytest.raises(SystemExit, match="pass --out"):
        new_report_path(tmp_path, DAY)
