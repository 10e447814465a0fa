"""A real Apache Kafka broker (KRaft, combined broker+controller) assembled from Maven Central.

The jars are resolved once with ``mvn dependency:copy-dependencies`` into
``~/.cache/leadflow/kafka/<version>-<digest of the POM>/`` and reused; the broker runs with
the JDK and a small heap, on a fresh data directory, tuned for tests (no rebalance delay,
replication 1).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from leadflow.devstack.broker_log import (
    Progress,
    count_partitions,
    diagnose,
    last_errors,
    progress,
)
from leadflow.devstack.procs import free_block, free_port, kill_process, stop_process, wait_port

POM = Path(__file__).resolve().parents[4] / "deploy" / "local" / "kafka" / "pom.xml"
if not POM.exists():  # installed outside the workspace: look relative to the working directory
    POM = Path.cwd() / "deploy" / "local" / "kafka" / "pom.xml"


class KafkaUnavailable(RuntimeError):
    """Java or Maven is missing, the jars cannot be resolved, or the broker did not start:
    said plainly, no stack trace. ``remove``: the data directory whose removal would let it
    start (too many partitions to load, or to hold in its heap), when that is the cause."""

    def __init__(self, message: str, remove: Path | None = None) -> None:
        super().__init__(message)
        self.remove = remove


def kafka_version() -> str:
    match = re.search(r"<kafka.version>([^<]+)</kafka.version>", POM.read_text())
    if not match:
        raise KafkaUnavailable(f"{POM} does not declare <kafka.version>")
    return match.group(1)


def cache_dir() -> Path:
    """Keyed by the Kafka version and the POM's digest: a changed POM (another logging
    jar, say) is resolved afresh instead of reusing jars resolved from the old one."""
    base = Path(os.environ.get("LEADFLOW_CACHE_DIR", Path.home() / ".cache" / "leadflow"))
    digest = hashlib.sha256(POM.read_bytes()).hexdigest()[:12]
    return base / "kafka" / f"{kafka_version()}-{digest}"


def ensure_jars(log: bool = True) -> Path:
    """The broker's jars, fetched from Maven Central on first use and cached by version."""
    target = cache_dir()
    marker = target / ".complete"
    if marker.exists():
        return target
    for tool in ("java", "mvn"):
        if shutil.which(tool) is None:
            raise KafkaUnavailable(
                f"`{tool}` was not found on PATH. The local Kafka broker is assembled from Maven "
                "Central and run with the JDK: install OpenJDK 17+ and Maven "
                "(Debian: `apt-get install -y openjdk-17-jre-headless maven`), "
                "or run everything in Docker with `make up`."
            )
    tmp = target.with_name(target.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    if log:
        print(
            f"[devstack] fetching Kafka {kafka_version()} jars from Maven Central into {target} ...",
            flush=True,
        )
    result = subprocess.run(
        [
            "mvn",
            "-B",
            "-q",
            "-f",
            str(POM),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={tmp}",
            "-DincludeScope=runtime",
        ],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise KafkaUnavailable(f"Maven could not resolve the Kafka jars:\n{tail}")
    (tmp / ".complete").write_text(kafka_version())
    if target.exists():
        shutil.rmtree(tmp, ignore_errors=True)  # another process won the race
    else:
        tmp.rename(target)
    return target


LOG4J2 = """\
status = warn
appender.file.type = RollingFile
appender.file.name = FILE
appender.file.fileName = {log}
appender.file.filePattern = {log}.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 20MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 2
rootLogger.level = {level}
rootLogger.appenderRef.file.ref = FILE
{startup}
"""
# Start-up progress at INFO whatever the root level (a line per partition loaded, a few per
# phase): what ``wait_listening`` waits on (``broker_log``). Quiet once the broker runs,
# but for a line or two per partition created or deleted.
STARTUP_LOGGERS = [
    "kafka.log.LogManager",
    "kafka.server.BrokerServer",
    "kafka.server.KafkaRaftServer",
    "org.apache.kafka.image.loader.MetadataLoader",
]
MAX_START_SECONDS = 1800.0  # even a broker that keeps loading gives up after this long


def _log4j2(log: Path, level: str) -> str:
    verbose = level.upper() in ("DEBUG", "TRACE", "ALL")
    startup = (
        ""
        if verbose
        else "\n".join(
            f"logger.s{i}.name = {name}\nlogger.s{i}.level = INFO"
            for i, name in enumerate(STARTUP_LOGGERS)
        )
    )
    return LOG4J2.format(log=log, level=level, startup=startup)


def _how_it_ended(code: int | None, timeout: float) -> str:
    if code is None:
        return f"still starting after {timeout:.0f}s without progress in its log"
    if code < 0:
        return f"killed by signal {-code}"
    return f"exited with code {code}"


class KafkaBroker:
    """One KRaft node. ``start()`` blocks until a client can list topics."""

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        controller_port: int | None = None,
        heap: str = "512m",
        partitions: int = 3,
        log_level: str | None = None,
        *,
        node_id: int = 1,
        voters: str | None = None,
        cluster_id: str | None = None,
        replication: int = 1,
        rack: str | None = None,
    ) -> None:
        """One node on its own (the defaults), or a member of a KRaft quorum
        (``KafkaCluster``): ``voters`` is ``controller.quorum.voters`` of every member,
        ``cluster_id`` shared by all, ``replication`` the default replication factor of
        topics and of the internal ones (``min.insync.replicas`` one less, at least 1),
        ``rack`` its ``broker.rack``."""
        self.data_dir = Path(data_dir)
        if not port:  # a free pair: the controller listens on the port above
            port = free_block(2)
            controller_port = controller_port or port + 1
        self.port = port
        self.controller_port = controller_port or free_port()
        self.heap = heap
        self.partitions = partitions
        self.log_level = log_level or os.environ.get("LEADFLOW_KAFKA_LOG_LEVEL", "WARN")
        self.node_id = node_id
        self.voters = voters or f"{node_id}@127.0.0.1:{self.controller_port}"
        self.cluster_id = cluster_id
        self.replication = replication
        self.rack = rack
        self.proc: subprocess.Popen[bytes] | None = None
        # Told how a slow start-up goes, every 15 s (the devstack prints it).
        self.report: Callable[[str], None] | None = None
        self.report_every = 15.0

    @property
    def log_path(self) -> Path:
        """The broker's own log (log4j, at ``log_level``); stdout.log beside it has the rest."""
        return self.data_dir / "broker.log"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _config(self) -> Path:
        logs = self.data_dir / "kraft-logs"
        config = self.data_dir / "server.properties"
        min_isr = max(1, self.replication - 1)
        cluster: list[str] = []
        if self.rack:  # consumers with a client.rack fetch from the replica in their rack
            cluster += [
                f"broker.rack={self.rack}",
                "replica.selector.class=org.apache.kafka.common.replica.RackAwareReplicaSelector",
            ]
        if self.replication > 1:
            # A SIGKILLed member is fenced (its partitions get new leaders) after this long
            # without a heartbeat: the default 9 s, shortened for tests.
            cluster += ["broker.session.timeout.ms=6000", "broker.heartbeat.interval.ms=1000"]
        config.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    f"node.id={self.node_id}",
                    f"controller.quorum.voters={self.voters}",
                    f"listeners=PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
                    f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
                    "controller.listener.names=CONTROLLER",
                    "inter.broker.listener.name=PLAINTEXT",
                    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                    f"log.dirs={logs}",
                    f"num.partitions={self.partitions}",
                    f"default.replication.factor={self.replication}",
                    f"min.insync.replicas={min_isr}",
                    f"offsets.topic.replication.factor={self.replication}",
                    "offsets.topic.num.partitions=5",
                    f"transaction.state.log.replication.factor={self.replication}",
                    f"transaction.state.log.min.isr={min_isr}",
                    "transaction.state.log.num.partitions=3",
                    f"share.coordinator.state.topic.replication.factor={self.replication}",
                    f"share.coordinator.state.topic.min.isr={min_isr}",
                    *cluster,
                    "group.initial.rebalance.delay.ms=0",
                    "auto.create.topics.enable=true",
                    "num.network.threads=2",
                    "num.io.threads=4",
                    "log.flush.interval.messages=9223372036854775807",
                    "log.retention.hours=168",
                    "log.segment.bytes=67108864",
                    "",
                ]
            )
        )
        (self.data_dir / "log4j2.properties").write_text(_log4j2(self.log_path, self.log_level))
        return config

    def _java(self, jars: Path, main: str, *args: str) -> list[str]:
        return [
            "java",
            f"-Xms{self.heap}",
            f"-Xmx{self.heap}",
            "-XX:+UseG1GC",
            "-XX:TieredStopAtLevel=1",
            "-Xshare:auto",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={self.data_dir}",
            "-cp",
            f"{jars}/*",
            main,
            *args,
        ]

    def format(self, jars: Path) -> None:
        config = self._config()
        if (self.data_dir / "kraft-logs" / "meta.properties").exists():
            return
        result = subprocess.run(
            self._java(
                jars,
                "kafka.tools.StorageTool",
                "format",
                "-t",
                self.cluster_id or _cluster_id(),
                "-c",
                str(config),
                "--ignore-formatted",
            ),
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise KafkaUnavailable(
                f"formatting Kafka storage failed:\n{result.stdout}{result.stderr}"
            )

    def start(self, timeout: float = 90.0, attempts: int = 2) -> None:
        """Start the broker and wait until a client can list topics.

        ``timeout`` is how long the broker may show no progress, not how long it may take:
        one loading thousands of partitions takes minutes and keeps logging that it does.
        A JVM that exits before opening its port (killed from outside, or a port taken
        between choosing it and binding it, on a shared machine) is started again, up to
        ``attempts`` times; one that stalled is not."""
        for attempt in range(1, attempts + 1):
            self.launch()
            if self.wait_listening(timeout, last_attempt=attempt == attempts):
                break
        self.wait_ready(timeout)

    def launch(self) -> None:
        """Format the storage if new and start the JVM; returns at once (see ``start``)."""
        jars = ensure_jars()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.format(jars)
        out = open(self.data_dir / "stdout.log", "ab")  # noqa: SIM115 - closed below
        self.proc = subprocess.Popen(
            self._java(jars, "kafka.Kafka", str(self.data_dir / "server.properties")),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()  # the child has its own descriptor

    def wait_listening(self, timeout: float, last_attempt: bool = True) -> bool:
        """Whether the launched JVM opened its port, waiting as long as its log shows it
        starting (loading partitions: ``broker_log``) and giving up after ``timeout``
        seconds without progress; one that exited is killed and, on the last attempt or
        when it stalled, reported with the cause its directory and logs show."""
        started = stalled_since = time.monotonic()
        last = self._progress()
        reported = started
        while not wait_port(self.port, 1.0, self.proc):
            if self.proc is None or self.proc.poll() is not None:
                break
            now = time.monotonic()
            seen = self._progress()
            if seen != last:
                last, stalled_since = seen, now
            if now - stalled_since > timeout or now - started > MAX_START_SECONDS:
                break
            if self.report is not None and now - reported >= self.report_every:
                reported = now
                self.report(self._loading(seen, now - started))
        else:
            return True
        code = self.proc.poll() if self.proc is not None else None
        self.kill()
        if code is None or last_attempt:
            found = diagnose(
                self.data_dir,
                count_partitions(self.data_dir / "kraft-logs"),
                last_errors([self.log_path, self.data_dir / "stdout.log"]),
            )
            raise KafkaUnavailable(
                f"Kafka did not open port {self.port} ({_how_it_ended(code, timeout)})"
                + (f": {found.cause}" if found.cause else "")
                + f"; see {self.data_dir}/broker.log and stdout.log",
                remove=self.data_dir if found.afresh else None,
            )
        return False

    def _progress(self) -> tuple[Progress, int]:
        out = self.data_dir / "stdout.log"
        return progress(self.log_path), out.stat().st_size if out.exists() else 0

    def _loading(self, seen: tuple[Progress, int], elapsed: float) -> str:
        loaded = seen[0].loaded
        count = f": {loaded[0]:,}/{loaded[1]:,} partitions loaded" if loaded else ""
        return f"Kafka is still starting after {elapsed:.0f}s{count} (see {self.log_path})"

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Ready = a client can list topics."""
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise KafkaUnavailable(
                    f"Kafka exited; see {self.data_dir}/broker.log and stdout.log"
                )
            try:
                asyncio.run(_list_topics(self.bootstrap))
                return
            except Exception as exc:
                last = exc
                time.sleep(0.2)
        raise KafkaUnavailable(f"Kafka not ready after {timeout}s: {last!r}")

    def stop(self) -> None:
        stop_process(self.proc, timeout=30)
        self.proc = None

    def kill(self) -> None:
        kill_process(self.proc)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def discard_data(self) -> None:
        """Remove a stopped throwaway broker's topics (its data directory's ``kraft-logs``),
        keeping its logs for a post-mortem: private brokers of tests and benchmarks."""
        if self.running:
            raise RuntimeError("stop the broker before discarding its data")
        shutil.rmtree(self.data_dir / "kraft-logs", ignore_errors=True)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def _cluster_id() -> str:
    import base64

    while True:  # like Kafka's own Uuid: never start with "-", which reads as an option
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


async def _list_topics(bootstrap: str) -> list[str]:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    await asyncio.wait_for(admin.start(), timeout=5)
    try:
        return list(await asyncio.wait_for(admin.list_topics(), timeout=5))
    finally:
        await admin.close()
