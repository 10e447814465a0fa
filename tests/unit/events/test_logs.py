"""Log lines written while an event is handled carry its lead, event and correlation ids."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator

import pytest
import structlog

from leadflow.events.logs import bind_event, clear_event, configure_logging


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    configure_logging("probe", level="INFO", json=True)
    [handler] = [
        h
        for h in logging.getLogger().handlers
        if isinstance(h, logging.StreamHandler)
        and isinstance(h.formatter, structlog.stdlib.ProcessorFormatter)
    ]
    captured = io.StringIO()
    previous = handler.setStream(captured)
    try:
        yield captured
    finally:
        handler.setStream(previous)
        clear_event()


def lines(captured: io.StringIO) -> list[dict[str, str]]:
    return [json.loads(line) for line in captured.getvalue().splitlines()]


def test_lines_logged_while_an_event_is_bound_carry_its_ids(log_lines: io.StringIO) -> None:
    lead_id, event_id = uuid.uuid4(), uuid.uuid4()
    bind_event(lead_id=lead_id, event_id=event_id, correlation_id=None, event_type="x.y")
    logging.getLogger("leadflow.test").info("stdlib line")
    structlog.get_logger("leadflow.test").info("structlog line", event_type="own")
    clear_event()
    logging.getLogger("leadflow.test").info("after")

    stdlib, own, after = lines(log_lines)
    assert stdlib["event"] == "stdlib line" and stdlib["service"] == "probe"
    assert stdlib["lead_id"] == str(lead_id) and stdlib["event_id"] == str(event_id)
    assert stdlib["event_type"] == "x.y"
    assert "correlation_id" not in stdlib  # empty values are left out
    assert own["lead_id"] == str(lead_id)
    assert own["event_type"] == "own"  # a line's own field wins over the bound one
    assert "lead_id" not in after and "event_id" not in after
