"""Analytics configuration (environment only; see the kernel's ServiceSettings for the rest).

| variable | default | meaning |
|---|---|---|
| `LEADFLOW_PORT` | `8005` | HTTP port |
| `LEADFLOW_PROJECTION_BATCH` | `250000` | events per projection transaction during a rebuild (the first and last chunk are a fifth of it) |
| `LEADFLOW_CONSUMER_FETCH_MAX_WAIT_MS` | `500` | a fetch gathers events up to this long... |
| `LEADFLOW_CONSUMER_FETCH_MIN_BYTES` | `1048576` | ...or until this much: dashboards can be half a second behind, and larger batches cost analytics, the broker and Postgres far less than one transaction per produce |
"""

from __future__ import annotations

from leadflow.events.settings import ServiceSettings


class AnalyticsSettings(ServiceSettings):
    service_name: str = "analytics"
    port: int = 8005
    projection_batch: int = 250_000
    consumer_fetch_max_wait_ms: int = 500
    consumer_fetch_min_bytes: int = 1_048_576
