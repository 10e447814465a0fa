"""sla-monitor settings: the kernel's variables plus the default business calendar.

| variable | default | meaning |
|---|---|---|
| `LEADFLOW_PORT` | `8004` | HTTP port |
| `LEADFLOW_DB_SCHEMA` | `sla` | Postgres schema |
| `LEADFLOW_SLA_DEFAULT_TIMEZONE` | `UTC` | IANA zone of the seeded `default` calendar |
| `LEADFLOW_SLA_WORKDAY_START` / `LEADFLOW_SLA_WORKDAY_END` | `09:00`, `17:00` | hours |
| `LEADFLOW_SLA_WORKDAYS` | `mon,tue,wed,thu,fri` | its working days |
| `LEADFLOW_CONSUMER_FETCH_MAX_WAIT_MS` | `250` | a fetch gathers routing events up to this long... |
| `LEADFLOW_CONSUMER_FETCH_MIN_BYTES` | `1048576` | ...or until this much (SLA clocks run in minutes and hours; fewer, larger batches) |

The `default` calendar is written once at startup when none is stored; later edits through
the admin API win. Everything else (`DATABASE_URL`, `KAFKA_BOOTSTRAP_SERVERS`,
`LEADFLOW_ADMIN_TOKEN`, ...) is documented in ``leadflow.events.settings``.
"""

from __future__ import annotations

from leadflow.events.calendar import BusinessCalendar, WorkingPeriod
from leadflow.events.settings import ServiceSettings
from leadflow.sla_monitor.domain import DEFAULT_CALENDAR_ID


class SlaSettings(ServiceSettings):
    service_name: str = "sla-monitor"
    port: int = 8004
    sla_default_timezone: str = "UTC"
    sla_workday_start: str = "09:00"
    sla_workday_end: str = "17:00"
    sla_workdays: str = "mon,tue,wed,thu,fri"
    consumer_fetch_max_wait_ms: int = 250
    consumer_fetch_min_bytes: int = 1_048_576

    def default_calendar(self) -> BusinessCalendar:
        """The calendar seeded at startup (validated: a bad zone or hour fails the start)."""
        period = WorkingPeriod(start=self.sla_workday_start, end=self.sla_workday_end)
        days = [d.strip() for d in self.sla_workdays.split(",") if d.strip()]
        return BusinessCalendar(
            calendar_id=DEFAULT_CALENDAR_ID,
            name=f"{self.sla_workdays} {self.sla_workday_start}-{self.sla_workday_end} "
            f"{self.sla_default_timezone}",
            timezone=self.sla_default_timezone,
            hours={d: [period] for d in days},
        )
