"""make run's console: the dev admin it creates is in .leadflow/dev.env and in the banner."""

from __future__ import annotations

import json
from pathlib import Path

from leadflow.devstack.__main__ import Devstack, available_services, banner


def _stack(home: Path, base: int = 8000) -> Devstack:
    return Devstack(home, kafka_port=0, pg_port=0, quiet=True, port_base=base)


def test_dev_env_names_the_console_and_its_admin_and_every_service_trusts_it(
    tmp_path: Path,
) -> None:
    stack = _stack(tmp_path, base=21000)
    env = dict(
        line.split("=", 1) for line in stack.write_env_file().read_text().splitlines() if line
    )
    assert env["LEADFLOW_CONSOLE_URL"] == "http://127.0.0.1:21000"
    assert env["LEADFLOW_AUTH_ISSUER"] == env["LEADFLOW_CONSOLE_URL"]
    assert env["LEADFLOW_CONSOLE_ADMIN_EMAIL"] == "admin@leadflow.local"
    assert len(env["LEADFLOW_CONSOLE_ADMIN_PASSWORD"]) >= 20
    shown = banner(stack, available_services(21000))
    assert env["LEADFLOW_CONSOLE_ADMIN_PASSWORD"] in shown
    assert "console           http://127.0.0.1:21000" in shown
    # Generated once: a second start keeps the same admin.
    again = _stack(tmp_path, base=21000).credentials()
    assert again["console_admin_password"] == env["LEADFLOW_CONSOLE_ADMIN_PASSWORD"]


def test_credentials_from_before_the_console_keep_their_tokens_and_gain_an_admin(
    tmp_path: Path,
) -> None:
    old = {"admin_token": "adm_old", "api_key": "key_old", "form_key": "form_old"}
    (tmp_path / "credentials.json").write_text(json.dumps(old))
    creds = _stack(tmp_path).credentials()
    assert {k: creds[k] for k in old} == old
    assert creds["console_admin_email"] == "admin@leadflow.local"
    assert json.loads((tmp_path / "credentials.json").read_text()) == creds
