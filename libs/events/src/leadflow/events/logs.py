"""JSON logs (structlog) with ``lead_id``, ``event_id`` and ``correlation_id`` bound per event."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from contextvars import ContextVar
from typing import Any

import structlog

_handler: logging.Handler | None = None


def configure_logging(service: str, level: str = "INFO", json: bool = True) -> None:
    """Route stdlib and structlog logs through one JSON renderer on stdout."""
    global _handler
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        merge_event_context,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                lambda _l, _m, ev: {**ev, "service": service},
                renderer,
            ],
            foreign_pre_chain=shared,
        )
    )
    root = logging.getLogger()
    if _handler is None:
        root.handlers = [handler]  # the first call: ours only
    else:
        root.removeHandler(_handler)  # a later call replaces ours, keeping any added since
        root.addHandler(handler)
    _handler = handler
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "kafka"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


# The event being handled: kept as given and turned into strings only when a line is
# logged, because most events log nothing (binding structlog's context variables per event
# cost more than the rest of the handling of a small event).
_event_context: ContextVar[dict[str, object] | None] = ContextVar("leadflow_event", default=None)


def bind_event(**values: object) -> None:
    """Every log line until ``clear_event`` carries these (the empty ones left out)."""
    _event_context.set(values)


def clear_event() -> None:
    _event_context.set(None)


def merge_event_context(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: the bound event's fields, unless the line sets them itself."""
    values = _event_context.get()
    if values:
        for key, value in values.items():
            if value and key not in event_dict:
                event_dict[key] = str(value)
    return event_dict
