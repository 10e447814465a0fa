"""What a starting broker's log and data directory say: progress, and the cause when it fails.

A broker loads every partition's log before it opens its port, one by one: a data directory
that holds thousands of partitions (topics of earlier test runs, on the broker of ``make
infra-up`` / ``make run``) takes minutes to load. A fixed deadline cannot tell that broker
from a hung one, so ``KafkaBroker`` waits as long as the log shows the broker loading
(``kafka.log.LogManager`` logs each partition at INFO, whatever the root level) and, when it
gives up or the JVM exits, ``diagnose`` says why and what to remove.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# "Completed load of Log(...) ... (798/15000 completed in /path/kraft-logs)"
LOADED = re.compile(rb"\((\d+)/(\d+) completed in ")
# A partition's directory: <topic>-<partition>; a topic of a test run: a scratch prefix of
# ``leadflow.testing.topics`` (t-<born>-...) or the per-test prefix used before it (t<hex>.).
PARTITION_DIR = re.compile(r"^(?P<topic>.+)-\d+$")
TEST_TOPIC = re.compile(r"^t(-\d{8}t\d{6}-|[0-9a-f]{10}\.)")
MANY_PARTITIONS = 2000  # where start-up time becomes noticeable on a laptop (~1 min)


@dataclass(frozen=True)
class Progress:
    """A snapshot of the broker's start-up: the log's size (grows while it works) and the
    last "N/M completed" count of loaded partition logs, when it printed one."""

    log_bytes: int
    loaded: tuple[int, int] | None


def progress(log: Path) -> Progress:
    try:
        size = log.stat().st_size
    except OSError:
        return Progress(0, None)
    loaded = None
    with log.open("rb") as f:
        f.seek(max(0, size - 65536))
        matches = LOADED.findall(f.read())
    if matches:
        done, total = matches[-1]
        loaded = (int(done), int(total))
    return Progress(size, loaded)


@dataclass(frozen=True)
class Partitions:
    total: int
    of_tests: int


def count_partitions(log_dirs: Path) -> Partitions:
    """The partition directories under ``log_dirs`` (the internal topics not counted)."""
    total = tests = 0
    try:
        entries = list(log_dirs.iterdir())
    except OSError:
        return Partitions(0, 0)
    for entry in entries:
        match = PARTITION_DIR.match(entry.name)
        if match is None or entry.name.startswith("__") or not entry.is_dir():
            continue
        total += 1
        tests += bool(TEST_TOPIC.match(match["topic"]))
    return Partitions(total, tests)


def last_errors(paths: list[Path], lines: int = 3) -> list[str]:
    """The last ERROR / FATAL / exception lines of the broker's logs (the cause, usually)."""
    found: list[str] = []
    for path in paths:
        try:
            text = path.read_bytes()[-200_000:].decode(errors="replace")
        except OSError:
            continue
        found += [
            line.strip()[:400]
            for line in text.splitlines()
            if " ERROR " in line or " FATAL " in line or "Error:" in line or "Exception:" in line
        ]
    return found[-lines:]


@dataclass(frozen=True)
class Diagnosis:
    cause: str  # empty: nothing in the directory or the logs explains it
    afresh: bool  # removing the data directory would let the broker start


def diagnose(data_dir: Path, partitions: Partitions, errors: list[str]) -> Diagnosis:
    """Why a broker did not start, as far as its directory and logs tell, and the fix."""
    out: list[str] = []
    out_of_heap = any("OutOfMemoryError" in e for e in errors)
    many = partitions.total >= MANY_PARTITIONS
    if out_of_heap:
        out.append("the broker ran out of heap")
    if many:
        of_tests = f", {partitions.of_tests:,} of them of test runs" if partitions.of_tests else ""
        out.append(
            f"its data directory holds {partitions.total:,} partitions{of_tests}, "
            "and a broker loads every one before it opens its port"
        )
    if errors:
        out.append("its log says: " + " | ".join(errors))
    if many or out_of_heap:
        out.append(
            f"to start afresh, remove {data_dir} (its topics and offsets: the broker starts "
            "empty and the services create their topics again); tests delete their topics "
            "now, so it does not fill up again"
        )
    return Diagnosis("; ".join(out), many or out_of_heap)
