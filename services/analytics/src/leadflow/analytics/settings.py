"""Analytics configuration (environment only; see the kernel's ServiceSettings for the rest).

| variable | default | meaning |
|---|---|---|
| `LEADFLOW_PORT` | `8005` | HTTP port |
| `LEADFLOW_STUCK_EXPECTED_DAYS` | `{}` | JSON: per-stage days before a lead is stuck |
| `LEADFLOW_PROJECTION_BATCH` | `100000` | events per projection transaction during a rebuild |
"""

from __future__ import annotations

from leadflow.events.settings import ServiceSettings


class AnalyticsSettings(ServiceSettings):
    service_name: str = "analytics"
    port: int = 8005
    stuck_expected_days: dict[str, float] = {}
    projection_batch: int = 100000
