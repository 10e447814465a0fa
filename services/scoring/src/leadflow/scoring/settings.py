"""Scoring's settings: the kernel's, plus the knobs of re-scoring and nurture."""

from __future__ import annotations

from leadflow.events.settings import ServiceSettings


class ScoringSettings(ServiceSettings):
    """Environment (prefix ``LEADFLOW_``) on top of :class:`ServiceSettings`.

    | variable | default | meaning |
    |---|---|---|
    | `LEADFLOW_PORT` | `8002` | HTTP port |
    | `LEADFLOW_RESCORE_BATCH_SIZE` | `500` | leads re-scored per transaction after a publish |
    """

    service_name: str = "scoring"
    port: int = 8002
    rescore_batch_size: int = 500
