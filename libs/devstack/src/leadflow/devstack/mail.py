"""The local mail catcher of ``make run``: Mailpit, built from its Go module into the
project's cache (``~/.cache/leadflow/bin``, like the Kafka jars), or, when Go is missing or
the build fails, the Python catcher (``leadflow.devstack.mailcatcher``) with the reason said.
Either way notify sends to its SMTP port and people read the mail in its web UI.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

MAILPIT_MODULE = "github.com/axllent/mailpit"
MAILPIT_VERSION = "v1.33.1"


class MailpitUnavailable(Exception):
    """Why Mailpit cannot run here (no Go toolchain, or its build failed)."""


def bin_dir() -> Path:
    base = Path(os.environ.get("LEADFLOW_CACHE_DIR", Path.home() / ".cache" / "leadflow"))
    return base / "bin"


def mailpit_path() -> Path:
    return bin_dir() / f"mailpit-{MAILPIT_VERSION}"


def ensure_mailpit(log: bool = True) -> Path:
    """The cached binary, built with ``go install`` on first use."""
    target = mailpit_path()
    if target.exists():
        return target
    go = shutil.which("go") or (
        "/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None
    )
    if go is None:
        raise MailpitUnavailable("Go is not installed (Mailpit is built from its Go module)")
    if log:
        print(
            f"[devstack] building Mailpit {MAILPIT_VERSION} with go install (once) ...", flush=True
        )
    with tempfile.TemporaryDirectory(prefix="mailpit-build-") as gobin:
        env = {**os.environ, "GOBIN": gobin, "CGO_ENABLED": "0"}
        try:
            done = subprocess.run(
                [go, "install", f"{MAILPIT_MODULE}@{MAILPIT_VERSION}"],
                env=env,
                capture_output=True,
                text=True,
                timeout=1200,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise MailpitUnavailable("go install of Mailpit took over 20 minutes") from exc
        built = Path(gobin) / "mailpit"
        if done.returncode != 0 or not built.exists():
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise MailpitUnavailable(f"go install {MAILPIT_MODULE} failed: {' | '.join(tail)}")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(built), target)
    return target


def mail_command(smtp_port: int, ui_port: int, data_dir: Path) -> tuple[list[str], str]:
    """How to start the catcher, and what it is (said in the banner)."""
    try:
        binary = ensure_mailpit()
    except MailpitUnavailable as exc:
        print(f"[devstack] {exc}; using the Python mail catcher (aiosmtpd) instead", flush=True)
        return (
            [
                sys.executable,
                "-m",
                "leadflow.devstack.mailcatcher",
                "--smtp-port",
                str(smtp_port),
                "--ui-port",
                str(ui_port),
            ],
            "Python mail catcher",
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    return (
        [
            str(binary),
            "--smtp",
            f"127.0.0.1:{smtp_port}",
            "--listen",
            f"127.0.0.1:{ui_port}",
            "--database",
            str(data_dir / "mailpit.db"),
            "--smtp-auth-accept-any",
            "--smtp-auth-allow-insecure",
        ],
        f"Mailpit {MAILPIT_VERSION}",
    )


def main() -> int:
    """``make mailpit``: build it now; a failure is reported, not fatal (run falls back)."""
    try:
        print(f"[devstack] Mailpit ready: {ensure_mailpit()}")
    except MailpitUnavailable as exc:
        print(f"[devstack] {exc}; `make run` will use the Python mail catcher", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
