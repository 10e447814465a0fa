"""Where a running platform answers: every service's URL and the credentials a client needs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Endpoints:
    intake: str
    scoring: str
    routing: str
    sla: str
    analytics: str
    admin_token: str
    api_key: str
    console: str = ""  # the console (sign-in, users); people's tokens come from there
    console_admin_email: str = ""
    console_admin_password: str = ""
    notify: str = ""

    @classmethod
    def local(
        cls,
        *,
        port_base: int = 8000,
        admin_token: str,
        api_key: str,
        host: str = "127.0.0.1",
        console_admin_email: str = "",
        console_admin_password: str = "",
    ) -> Endpoints:
        def url(n: int) -> str:
            return f"http://{host}:{port_base + n}"

        return cls(
            url(1),
            url(2),
            url(3),
            url(4),
            url(5),
            admin_token,
            api_key,
            url(0),
            console_admin_email,
            console_admin_password,
            notify=url(6),
        )

    @classmethod
    def from_credentials(cls, creds: Mapping[str, str], port_base: int = 8000) -> Endpoints:
        """From ``Devstack.credentials()``."""
        return cls.local(
            port_base=port_base,
            admin_token=creds["admin_token"],
            api_key=creds["api_key"],
            console_admin_email=creds.get("console_admin_email", ""),
            console_admin_password=creds.get("console_admin_password", ""),
        )
