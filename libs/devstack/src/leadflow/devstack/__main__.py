"""``python -m leadflow.devstack`` — run Leadflow locally: Kafka, Postgres and every service.

Commands:
  run        start Kafka + Postgres + every service in the foreground (Ctrl-C stops all)
  infra-up   start Kafka + Postgres in the background (returns when ready)
  infra-down stop what infra-up started
  status     say what is running
  env        print the generated connection settings (.leadflow/dev.env)

State lives in ``.leadflow/`` (gitignored): data directories, logs, generated credentials.
A lock file makes a second ``run`` say "already running" instead of fighting over ports.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import importlib.util
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from leadflow.devstack.kafka import MAX_START_SECONDS, KafkaBroker, KafkaUnavailable
from leadflow.devstack.postgres import PostgresServer
from leadflow.devstack.procs import port_open, stop_process, wait_port


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    module: str
    port: int
    schema: str


SERVICES = [
    ServiceSpec("console", "leadflow.console", 8000, "console"),
    ServiceSpec("intake", "leadflow.intake", 8001, "intake"),
    ServiceSpec("scoring", "leadflow.scoring", 8002, "scoring"),
    ServiceSpec("routing", "leadflow.routing", 8003, "routing"),
    ServiceSpec("sla-monitor", "leadflow.sla_monitor", 8004, "sla"),
    ServiceSpec("analytics", "leadflow.analytics", 8005, "analytics"),
    ServiceSpec("notify", "leadflow.notify", 8006, "notify"),
]


def available_services(port_base: int = 8000) -> list[ServiceSpec]:
    """Services whose package has an ``app`` module (each service issue registers itself).

    Ports are ``port_base`` + 0..6 (8000-8006 by default, the console on the base itself,
    notify on base+6; tests pick another base).
    """
    return [
        ServiceSpec(s.name, s.module, port_base + s.port - 8000, s.schema)
        for s in SERVICES
        if importlib.util.find_spec(f"{s.module}.app") is not None
    ]


class Devstack:
    def __init__(
        self,
        home: Path,
        kafka_port: int,
        pg_port: int,
        quiet: bool = False,
        port_base: int = 8000,
        *,
        kafka_bootstrap: str | None = None,
        database_url: str | None = None,
        schema_prefix: str = "",
        topic_prefix: str = "",
        extra_env: dict[str, str] | None = None,
        mail: bool = False,
    ) -> None:
        """``kafka_bootstrap`` + ``database_url`` reuse running infrastructure (tests):
        ``start_infra`` and ``stop_all`` then leave Kafka and Postgres alone. The prefixes
        isolate a stack on shared infrastructure (schemas ``<prefix><schema>``, topics
        ``<prefix>leadflow.*``); ``extra_env`` is added to every service's environment.
        ``mail`` starts the local mail catcher (Mailpit) notify sends to (``make run``)."""
        self.home = home
        self.port_base = port_base
        self.external = (
            (kafka_bootstrap, database_url) if kafka_bootstrap and database_url else None
        )
        self.schema_prefix = schema_prefix
        self.topic_prefix = topic_prefix
        self.extra_env = dict(extra_env or {})
        self.kafka = KafkaBroker(  # port 0: the broker picks a free pair
            home / "kafka", port=kafka_port, controller_port=kafka_port + 1 if kafka_port else None
        )
        self.kafka.report = self.say  # a slow start-up (a large data directory) says how it goes
        self.postgres = PostgresServer(home / "postgres", port=pg_port)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, IO[bytes]] = {}
        self.quiet = quiet
        self.mail = mail
        self.smtp_port = int(os.environ.get("LEADFLOW_SMTP_PORT", "1025"))
        self.mail_ui_port = int(os.environ.get("LEADFLOW_MAIL_UI_PORT", "8025"))
        self.mail_proc: subprocess.Popen[bytes] | None = None
        self.mail_kind = ""
        self._lock: IO[str] | None = None
        self._stopping = False

    # -- locking ------------------------------------------------------------------------

    def acquire(self) -> bool:
        self.home.mkdir(parents=True, exist_ok=True)
        lock = open(self.home / "devstack.lock", "a+")  # noqa: SIM115 - held for the process life
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            return False
        lock.seek(0)
        lock.truncate()
        lock.write(str(os.getpid()))
        lock.flush()
        self._lock = lock
        return True

    # -- credentials --------------------------------------------------------------------

    def credentials(self) -> dict[str, str]:
        path = self.home / "credentials.json"
        creds: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
        fresh = {
            "admin_token": "adm_" + secrets.token_urlsafe(24),
            "api_key": "key_" + secrets.token_urlsafe(24),
            "form_key": "form_" + secrets.token_hex(8),
            "console_admin_email": "admin@leadflow.local",
            "console_admin_password": secrets.token_urlsafe(18),
        }
        if not fresh.keys() <= creds.keys():  # new, or written before the console existed
            creds = {**fresh, **creds}
            path.write_text(json.dumps(creds, indent=2))
            path.chmod(0o600)
        return creds

    @property
    def console_url(self) -> str:
        return f"http://127.0.0.1:{self.port_base}"

    def env(self) -> dict[str, str]:
        creds = self.credentials()
        kafka, database = self.external or (self.kafka.bootstrap, self.postgres.url)
        return {
            "DATABASE_URL": database,
            "KAFKA_BOOTSTRAP_SERVERS": kafka,
            "LEADFLOW_ADMIN_TOKEN": creds["admin_token"],
            # Every service trusts the console of this stack; it creates the dev admin user.
            "LEADFLOW_AUTH_ISSUER": self.console_url,
            "LEADFLOW_CONSOLE_URL": self.console_url,
            # The console's pages call this stack's services.
            **{
                f"LEADFLOW_CONSOLE_{name}_URL": f"http://127.0.0.1:{self.port_base + n}"
                for n, name in enumerate(("INTAKE", "SCORING", "ROUTING", "SLA", "ANALYTICS"), 1)
            },
            "LEADFLOW_CONSOLE_ADMIN_EMAIL": creds["console_admin_email"],
            "LEADFLOW_CONSOLE_ADMIN_PASSWORD": creds["console_admin_password"],
            "LEADFLOW_INTAKE_BOOTSTRAP_API_KEY": creds["api_key"],
            "LEADFLOW_INTAKE_BOOTSTRAP_FORM_KEY": creds["form_key"],
            "LEADFLOW_INTAKE_BOOTSTRAP_FORM_ORIGINS": (
                f"http://localhost:{self.port_base + 1},http://127.0.0.1:{self.port_base + 1}"
            ),
            # notify: the local catcher, links to the console and back to notify, intake
            # for opt-outs and e-mail activity; webhooks to local receivers are allowed.
            "LEADFLOW_SMTP_URL": f"smtp://127.0.0.1:{self.smtp_port}",
            "LEADFLOW_MAIL_UI_URL": f"http://127.0.0.1:{self.mail_ui_port}",
            "LEADFLOW_NOTIFY_PUBLIC_URL": f"http://127.0.0.1:{self.port_base + 6}",
            "LEADFLOW_INTAKE_URL": f"http://127.0.0.1:{self.port_base + 1}",
            "LEADFLOW_NOTIFY_INTAKE_API_KEY": creds["api_key"],
            "LEADFLOW_NOTIFY_WEBHOOKS_ALLOW_PRIVATE": "true",
        }

    def write_env_file(self) -> Path:
        path = self.home / "dev.env"
        lines = [f"{k}={v}" for k, v in self.env().items()]
        path.write_text("\n".join(lines) + "\n")
        path.chmod(0o600)
        return path

    # -- start/stop ---------------------------------------------------------------------

    def say(self, message: str) -> None:
        if not self.quiet:
            print(f"[devstack] {message}", flush=True)

    def start_infra(self) -> None:
        if self.external is not None:
            return
        busy = [p for p in (self.kafka.port, self.postgres.port) if port_open(p)]
        if busy:
            raise SystemExit(
                f"[devstack] port(s) {busy} already in use by another program; "
                "set LEADFLOW_KAFKA_PORT / LEADFLOW_PG_PORT to other ports"
            )
        started = time.monotonic()
        self.say(f"starting Postgres on 127.0.0.1:{self.postgres.port} ...")
        self.postgres.start()
        self.say(f"starting Kafka on {self.kafka.bootstrap} ...")
        self.kafka.start()
        self.say(f"infrastructure ready in {time.monotonic() - started:.1f}s")

    def start_mail(self) -> None:
        """Mailpit (or the Python catcher) for notify's e-mail, when this stack has mail."""
        if not self.mail:
            return
        from leadflow.devstack.mail import mail_command

        for port in (self.smtp_port, self.mail_ui_port):
            if port_open(port):
                raise SystemExit(
                    f"[devstack] port {port} (mail) is already in use; "
                    "set LEADFLOW_SMTP_PORT / LEADFLOW_MAIL_UI_PORT to other ports"
                )
        command, self.mail_kind = mail_command(
            self.smtp_port, self.mail_ui_port, self.home / "mail"
        )
        log_dir = self.home / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        log = open(log_dir / "mail.log", "ab")  # noqa: SIM115 - owned by the process
        self.logs["mail"] = log
        self.say(f"starting {self.mail_kind} (SMTP 127.0.0.1:{self.smtp_port}) ...")
        self.mail_proc = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        if not wait_port(self.smtp_port, 30, self.mail_proc):
            self.say(f"the mail catcher did not start; see {log_dir / 'mail.log'}")

    def start_service(self, spec: ServiceSpec, env_overrides: dict[str, str] | None = None) -> None:
        """Start ``spec`` as a process (logs and ``procs`` keyed by its name: a replica is a
        spec of its own, e.g. ``scoring-2``); ``env_overrides`` win over everything (a
        replica's own database or rack)."""
        env = {
            **os.environ,
            **self.env(),
            "LEADFLOW_PORT": str(spec.port),
            "LEADFLOW_HOST": os.environ.get("LEADFLOW_HOST", "127.0.0.1"),
            "LEADFLOW_DB_SCHEMA": self.schema_prefix + spec.schema,
            **({"LEADFLOW_TOPIC_PREFIX": self.topic_prefix} if self.topic_prefix else {}),
            **self.extra_env,
            **(env_overrides or {}),
        }
        log_dir = self.home / "logs"
        log_dir.mkdir(exist_ok=True)
        log = open(log_dir / f"{spec.name}.log", "ab")  # noqa: SIM115 - owned by the process
        self.logs[spec.name] = log
        self.procs[spec.name] = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                f"{spec.module}.app:create_app",
                "--host",
                env["LEADFLOW_HOST"],
                "--port",
                str(spec.port),
                "--no-access-log",
                "--timeout-graceful-shutdown",
                "25",
                "--timeout-keep-alive",
                str(int(float(env.get("LEADFLOW_HTTP_KEEP_ALIVE_SECONDS") or 75))),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, spec: ServiceSpec, timeout: float = 120) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            proc = self.procs.get(spec.name)
            if proc is None or proc.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{spec.port}/readyz", timeout=2) as r:
                    if r.status == 200:
                        return True
            except Exception:
                pass
            time.sleep(0.3)
        return False

    def start_services(self) -> list[ServiceSpec]:
        specs = available_services(self.port_base)
        for spec in specs:
            if port_open(spec.port):
                raise SystemExit(f"[devstack] port {spec.port} ({spec.name}) is already in use")
        for spec in specs:
            self.say(f"starting {spec.name} on http://127.0.0.1:{spec.port} ...")
            self.start_service(spec)
        for spec in specs:
            if not self.wait_ready(spec):
                self.say(f"{spec.name} did not become ready; see {self.home}/logs/{spec.name}.log")
        return specs

    def supervise(self, specs: list[ServiceSpec]) -> None:
        """Keep services up: one that dies is restarted (with its log noting it)."""
        restarts: dict[str, float] = {}
        while not self._stopping:
            time.sleep(1)
            for spec in specs:
                proc = self.procs.get(spec.name)
                if proc is not None and proc.poll() is not None and not self._stopping:
                    wait = restarts.get(spec.name, 0.5)
                    self.say(
                        f"{spec.name} exited with {proc.returncode}; restarting in {wait:.1f}s"
                    )
                    time.sleep(wait)
                    restarts[spec.name] = min(wait * 2, 30)
                    self.start_service(spec)
            for component, running in (
                ("Kafka", self.kafka.running),
                ("Postgres", self.postgres.running),
            ):
                if not running and not self._stopping:
                    self.say(f"{component} stopped unexpectedly; restarting it")
                    (self.kafka if component == "Kafka" else self.postgres).start()

    def stop_all(self) -> None:
        self._stopping = True
        if self.mail_proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.mail_proc.pid, signal.SIGTERM)
            stop_process(self.mail_proc, timeout=10)
            self.mail_proc = None
        for name, proc in self.procs.items():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            self.say(f"stopping {name} ...")
        for proc in self.procs.values():
            stop_process(proc, timeout=30)
        self.procs.clear()
        for log in self.logs.values():
            log.close()
        if self.external is not None:
            self.say("services stopped (Kafka and Postgres were not ours)")
            return
        self.say("stopping Kafka ...")
        self.kafka.stop()
        self.say("stopping Postgres ...")
        self.postgres.stop()
        self.say("everything stopped")


def banner(stack: Devstack, specs: list[ServiceSpec]) -> str:
    creds = stack.credentials()
    by_name = {s.name: s for s in specs}
    lines = ["", "Leadflow is running.", ""]
    if "console" in by_name:
        lines.append(f"  Console           {stack.console_url}/  (sign in below)")
    if "analytics" in by_name:
        lines.append(f"  Dashboard         http://127.0.0.1:{by_name['analytics'].port}/")
    for spec in specs:
        lines.append(f"  {spec.name:<17} http://127.0.0.1:{spec.port}  (API docs: /docs)")
    if stack.mail:
        lines.append(
            f"  Mail ({stack.mail_kind}) http://127.0.0.1:{stack.mail_ui_port}/"
            f"  (SMTP 127.0.0.1:{stack.smtp_port})"
        )
    if "intake" in by_name:
        intake = by_name["intake"].port
        lines.append(
            f"  Sample web form   http://127.0.0.1:{intake}/v1/forms/{creds['form_key']}/example"
        )
    lines += [
        "",
        f"  Kafka             {stack.kafka.bootstrap}",
        f"  Postgres          {stack.postgres.url}",
        "",
        f"  Console admin     {creds['console_admin_email']}",
        f"  Admin password    {creds['console_admin_password']}",
        f"  Admin token       {creds['admin_token']}   (automation: acts as the admin role)",
        f"  API key           {creds['api_key']}   (X-Api-Key: inquiries, scans, activities)",
        f"  Web form key      {creds['form_key']}",
        f"  Settings file     {stack.home / 'dev.env'}",
        f"  Logs              {stack.home / 'logs'}/",
        "",
        "Press Ctrl-C to stop everything.",
        "",
    ]
    return "\n".join(lines)


def _home(args: Any) -> Path:
    return Path(args.home or os.environ.get("LEADFLOW_HOME", ".leadflow")).resolve()


def _make(args: Any, mail: bool = False) -> Devstack:
    return Devstack(
        _home(args),
        kafka_port=int(os.environ.get("LEADFLOW_KAFKA_PORT", "9092")),
        pg_port=int(os.environ.get("LEADFLOW_PG_PORT", "5432")),
        port_base=int(os.environ.get("LEADFLOW_PORT_BASE", "8000")),
        mail=mail,
    )


def cmd_run(args: Any, infra_only: bool = False) -> int:
    stack = _make(args, mail=not infra_only)
    if not stack.acquire():
        print(
            f"[devstack] Leadflow is already running from {stack.home} "
            f"(pid {(stack.home / 'devstack.lock').read_text().strip()}); "
            "stop it first (Ctrl-C there, or `make infra-down`)."
        )
        return 1

    def on_signal(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        try:
            stack.start_infra()
        except KafkaUnavailable as exc:
            print(f"[devstack] {exc}", file=sys.stderr)
            if exc.remove is not None:
                print(
                    f"[devstack] `make clean` removes all of {stack.home} (the databases and "
                    f"credentials too); `rm -rf {stack.kafka.data_dir}` only the broker's data. "
                    "README: Troubleshooting.",
                    file=sys.stderr,
                )
            stack.stop_all()
            return 2
        stack.write_env_file()
        stack.start_mail()
        specs: list[ServiceSpec] = [] if infra_only else stack.start_services()
        (stack.home / "ready").write_text("ready")
        if infra_only:
            stack.say(f"Kafka {stack.kafka.bootstrap}, Postgres {stack.postgres.url}")
            stack.say(f"settings in {stack.home / 'dev.env'}")
        else:
            print(banner(stack, specs), flush=True)
            if os.environ.get("LEADFLOW_DEMO") == "1":
                from leadflow.devstack.demo import start_demo

                start_demo(stack.credentials(), specs, stack.port_base, stack.say)
        stack.supervise(specs)
    except KeyboardInterrupt:
        pass
    finally:
        # A second Ctrl-C (or make forwarding the first) must not cut the shutdown short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        (stack.home / "ready").unlink(missing_ok=True)
        stack.stop_all()
    return 0


def cmd_infra_up(args: Any) -> int:
    """Start ``serve-infra`` in the background and return when it is ready, passing on what
    it says meanwhile (a broker loading a large data directory reports how far it got).
    The child bounds its own start-up (Kafka: while its log shows progress, at most
    ``MAX_START_SECONDS``), so this waits for it rather than for a fixed time."""
    home = _home(args)
    home.mkdir(parents=True, exist_ok=True)
    (home / "ready").unlink(missing_ok=True)
    started = time.monotonic()
    path = home / "devstack.log"
    log = open(path, "ab")  # noqa: SIM115 - handed to the child
    seen = path.stat().st_size
    child = subprocess.Popen(
        [sys.executable, "-m", "leadflow.devstack", "--home", str(home), "serve-infra"],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    limit = MAX_START_SECONDS + 300  # Kafka's own bound, and Postgres's
    while time.monotonic() - started < limit:
        if (home / "ready").exists():
            _relay(path, seen, sys.stdout)  # what it said just before it was ready
            print(
                f"[devstack] infrastructure up in {time.monotonic() - started:.1f}s "
                f"(pid {child.pid}); settings in {home / 'dev.env'}:"
            )
            print((home / "dev.env").read_text(), end="")
            return 0
        if child.poll() is not None:
            _relay(path, seen, sys.stderr)
            return child.returncode or 1
        seen = _relay(path, seen, sys.stdout)
        time.sleep(0.2)
    print(f"[devstack] infrastructure did not become ready in {limit:.0f}s", file=sys.stderr)
    stop_process(child, timeout=60)
    return 1


def _relay(path: Path, offset: int, to: IO[str]) -> int:
    """Print what ``path`` gained past ``offset`` (whole lines); the new offset."""
    with path.open("rb") as f:
        f.seek(offset)
        chunk = f.read()
    whole = chunk[: chunk.rfind(b"\n") + 1]
    if whole:
        print(whole.decode(errors="replace"), end="", file=to, flush=True)
    return offset + len(whole)


def cmd_infra_down(args: Any) -> int:
    home = _home(args)
    lock = home / "devstack.lock"
    if not lock.exists() or not lock.read_text().strip():
        print("[devstack] nothing is running")
        return 0
    pid = int(lock.read_text().strip())
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        print("[devstack] nothing is running")
        return 0
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            print("[devstack] stopped")
            return 0
        time.sleep(0.2)
    print("[devstack] still running after 90s", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m leadflow.devstack",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--home", help="state directory (default .leadflow or $LEADFLOW_HOME)")
    parser.add_argument(
        "command", choices=["run", "infra-up", "infra-down", "serve-infra", "env", "status"]
    )
    args = parser.parse_args(argv)
    if args.command == "run":
        return cmd_run(args)
    if args.command == "serve-infra":
        return cmd_run(args, infra_only=True)
    if args.command == "infra-up":
        return cmd_infra_up(args)
    if args.command == "infra-down":
        return cmd_infra_down(args)
    home = _home(args)
    if args.command == "env":
        print((home / "dev.env").read_text() if (home / "dev.env").exists() else "", end="")
        return 0
    running = (home / "ready").exists()
    print("running" if running else "not running")
    return 0 if running else 3


if __name__ == "__main__":
    raise SystemExit(main())
