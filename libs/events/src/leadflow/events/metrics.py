"""Prometheus metrics every service exposes at ``/metrics`` (labelled by service)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUEST_LATENCY = Histogram(
    "leadflow_http_request_seconds",
    "HTTP request latency",
    ["service", "method", "route", "status"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
CONSUMER_LAG = Gauge(
    "leadflow_consumer_lag", "Records behind the partition end", ["service", "topic", "partition"]
)
HANDLER_LATENCY = Histogram(
    "leadflow_handler_seconds",
    "Time to handle one consumed batch, per record",
    ["service", "event_type"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
)
EVENTS_CONSUMED = Counter(
    "leadflow_events_consumed_total", "Events handled", ["service", "topic", "event_type"]
)
DUPLICATES_SKIPPED = Counter(
    "leadflow_duplicates_skipped_total", "Redelivered events skipped by the inbox", ["service"]
)
DLQ_RECORDS = Counter(
    "leadflow_dlq_records_total", "Records sent to a dead-letter topic", ["service", "topic"]
)
CONSUMER_RESTARTS = Counter(
    "leadflow_consumer_restarts_total",
    "Consumers restarted because a partition with records waiting stopped moving",
    ["service"],
)
HANDLER_RETRIES = Counter(
    "leadflow_handler_retries_total", "Batches or records retried after an error", ["service"]
)
OUTBOX_DEPTH = Gauge("leadflow_outbox_depth", "Events waiting in the outbox", ["service"])
OUTBOX_PUBLISHED = Counter("leadflow_outbox_published_total", "Events published", ["service"])
PUBLISH_LATENCY = Histogram(
    "leadflow_publish_latency_seconds",
    "Commit-to-broker-ack latency of outbox events",
    ["service"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30),
)
TIMERS_FIRED = Counter("leadflow_timers_fired_total", "Durable timers fired", ["service", "kind"])
SLA_BREACHES = Counter(
    "leadflow_sla_breaches_total", "SLA breaches raised", ["service", "policy_id"]
)
PROJECTION_POSITION = Gauge(
    "leadflow_projection_position", "Last log position applied", ["service", "projection"]
)
BACKGROUND_FAILURES = Counter(
    "leadflow_background_task_failures_total",
    "Background tasks (kit.spawn) that ended with an exception",
    ["service", "task"],
)
