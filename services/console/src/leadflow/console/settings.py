"""The console's settings: the kernel's, plus sign-in, tokens and the bootstrap admin."""

from __future__ import annotations

from pydantic import Field

from leadflow.events.settings import ServiceSettings


class ConsoleSettings(ServiceSettings):
    """Environment (prefix ``LEADFLOW_``) on top of :class:`ServiceSettings`.

    The console signs tokens as ``LEADFLOW_AUTH_ISSUER`` (the same variable every service
    verifies against), so the default configuration needs nothing. It neither produces nor
    consumes events: no Kafka, and its readiness does not depend on the broker.
    """

    service_name: str = "console"
    port: int = 8000
    run_consumers: bool = False
    console_access_ttl_seconds: int = Field(default=900, ge=60, le=86_400)
    console_signing_key_file: str = ""
    console_admin_email: str = ""
    console_admin_password: str = ""
    console_login_max_failures: int = Field(default=5, ge=1)
    console_login_ip_max_failures: int = Field(default=50, ge=1)
    console_login_window_seconds: float = Field(default=300.0, gt=0)
    # Where the console's pages call the services (server-side, with the person's token).
    console_intake_url: str = "http://127.0.0.1:8001"
    console_scoring_url: str = "http://127.0.0.1:8002"
    console_routing_url: str = "http://127.0.0.1:8003"
    console_sla_url: str = "http://127.0.0.1:8004"
    console_analytics_url: str = "http://127.0.0.1:8005"
