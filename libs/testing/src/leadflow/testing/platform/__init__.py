"""The platform as a test kit: start every service as a real process, feed it, wait for it,
measure it — what the end-to-end and acceptance tests (``tests/e2e/conftest.py``), the fault
and cluster suites and the benchmarks (``bench/pipeline.py``) share, one copy of it.

- ``launch``: ``launch_platform(home, ...)`` → ``Platform`` (private Kafka + Postgres on free
  ports, or the test infrastructure with schema and topic prefixes), ``UNTHROTTLED_KEY``;
- ``endpoints``: ``Endpoints`` (every service's URL, the admin token, an API key);
- ``load``: ``configure_platform`` (a queue, a team of reps, a round-robin rule), ``LoadDriver``
  (open-loop inquiries), ``AssignmentWatcher`` (``lead.assigned`` records), ``group_lags``;
- ``measure``: ``measure_latency``, ``measure_step``, ``platform_cpu``, ``cpu_table``.

The seeded population (``bench/workload.py``: plans, simulated reps) stays with the
benchmarks and the demo for now.
"""

from leadflow.testing.platform.endpoints import Endpoints
from leadflow.testing.platform.launch import UNTHROTTLED_KEY, Platform, launch_platform
from leadflow.testing.platform.load import (
    REPS,
    AssignmentWatcher,
    LoadDriver,
    Sent,
    configure_platform,
    group_lags,
    inquiry_body,
)
from leadflow.testing.platform.measure import (
    LatencyResult,
    StepResult,
    cpu_table,
    lag_is_zero,
    measure_latency,
    measure_step,
    pct,
    platform_cpu,
    process_cpu,
)

__all__ = [
    "REPS",
    "UNTHROTTLED_KEY",
    "AssignmentWatcher",
    "Endpoints",
    "LatencyResult",
    "LoadDriver",
    "Platform",
    "Sent",
    "StepResult",
    "configure_platform",
    "cpu_table",
    "group_lags",
    "inquiry_body",
    "lag_is_zero",
    "launch_platform",
    "measure_latency",
    "measure_step",
    "pct",
    "platform_cpu",
    "process_cpu",
]
