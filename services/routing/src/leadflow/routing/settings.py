"""Routing's settings: the kernel's, plus the defaults this service needs."""

from __future__ import annotations

from leadflow.events.settings import ServiceSettings


class RoutingSettings(ServiceSettings):
    """Environment (prefix ``LEADFLOW_``) on top of :class:`ServiceSettings`.

    ``LEADFLOW_PORT`` defaults to 8003. ``LEADFLOW_ROUTING_CONFIG_CACHE`` (default true)
    keeps the parsed roster and rule set in memory until an admin change bumps the
    configuration revision in the database, so a decision does not re-read 200 reps.
    """

    service_name: str = "routing"
    port: int = 8003
    routing_config_cache: bool = True
