"""``python -m bench`` (``make bench``): every benchmark in bench/, one report with the ratios.

    uv run python -m bench [--quick] [--only pipeline,bench_routing] [--out bench/results/X.md]

Each script that exists (bench_kernel, bench_intake, bench_scoring, bench_routing,
bench_sla, bench_analytics, bench_import, bench_notify, pipeline) runs in its own subprocess with a time budget; its output (the
figures and their ratios to the raw aiokafka / asyncpg baselines each script measures in
the same run) goes into ``bench/results/<date>.md`` (``<date>b.md``, ... when a report of
the day is there already) with the exact command, the duration and the exit status. The
component benchmarks need ``KAFKA_BOOTSTRAP_SERVERS`` and ``DATABASE_URL``: when they are
not set, a private Kafka + Postgres is started for the run (on free ports, under a
temporary directory) and stopped at the end. ``pipeline`` always
starts its own platform (all five services). ``--quick`` passes smaller sizes.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


@dataclass(frozen=True)
class Bench:
    name: str
    args: tuple[str, ...]
    quick: tuple[str, ...]
    budget: float  # seconds
    needs_infra: bool = True


BENCHES = [
    Bench("bench_kernel", (), ("--quick",), 300),
    Bench("bench_intake", ("--seconds", "10"), ("--seconds", "4", "--warmup", "1"), 300),
    Bench("bench_scoring", ("--events", "5000"), ("--events", "1000"), 420),
    Bench("bench_routing", ("--leads", "2000"), ("--leads", "500"), 420),
    Bench("bench_sla", ("--leads", "1000"), ("--leads", "200"), 420),
    Bench(
        # The target is for a log of at least 1M events (a small log is dominated by
        # the first chunk's fold and the last chunk's write, which nothing overlaps).
        "bench_analytics",
        ("--events", "1000000", "--requests", "100"),
        ("--events", "20000", "--requests", "50"),
        600,
    ),
    # 100k-row import vs asyncpg COPY, then the X Education export end to end (processes).
    Bench("bench_import", ("--rows", "100000"), ("--quick", "--no-x-education"), 1200),
    Bench(
        "bench_notify", ("--rate", "50", "--seconds", "20"), ("--rate", "50", "--seconds", "5"), 300
    ),
    Bench("pipeline", (), ("--quick",), 900, needs_infra=False),
]


@contextlib.contextmanager
def infrastructure() -> Iterator[dict[str, str]]:
    """The environment's broker/database, or private ones for the duration of the run."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS") and os.environ.get("DATABASE_URL"):
        yield {}
        return
    from leadflow.devstack.kafka import KafkaBroker
    from leadflow.devstack.postgres import PostgresServer

    home = Path(tempfile.mkdtemp(prefix="leadflow-bench-infra-"))
    kafka = KafkaBroker(home / "kafka")  # free ports of their own choosing
    postgres = PostgresServer(home / "postgres")
    print(f"[bench] starting a private Kafka and Postgres under {home}", flush=True)
    try:
        postgres.start()
        kafka.start()
        yield {"KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap, "DATABASE_URL": postgres.url}
    finally:
        kafka.stop()
        postgres.stop()
        shutil.rmtree(home, ignore_errors=True)


@dataclass
class Outcome:
    bench: Bench
    command: str
    seconds: float
    status: str
    output: str


def run_one(bench: Bench, quick: bool, env: dict[str, str]) -> Outcome:
    script = HERE / f"{bench.name}.py"
    args = list(bench.quick if quick else bench.args)
    cmd = [sys.executable, str(script.relative_to(ROOT)), *args]
    shown = "uv run python " + " ".join(cmd[1:])
    print(f"[bench] {shown}", flush=True)
    started = time.monotonic()
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = proc.communicate(timeout=bench.budget)
        status = "ok" if proc.returncode == 0 else f"exit {proc.returncode}"
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 15)
        try:
            output, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 9)
            output, _ = proc.communicate()
        status = f"over its {bench.budget:.0f} s budget (stopped)"
    seconds = time.monotonic() - started
    print(f"[bench] {bench.name}: {status} in {seconds:.0f} s", flush=True)
    return Outcome(bench, shown, seconds, status, output or "")


def _body(outcome: Outcome) -> str:
    """Markdown output (pipeline) as is; anything else fenced, progress chatter dropped."""
    text = outcome.output.strip()
    if outcome.bench.name == "pipeline" and "### Pipeline" in text:
        return text[text.index("### Pipeline") :]
    kept = [line for line in text.splitlines() if not line.startswith("[")]
    tail = "\n".join(kept[-80:])
    return f"```\n{tail}\n```"


def report(outcomes: list[Outcome], quick: bool) -> str:
    now = dt.datetime.now(dt.UTC)
    head = [
        f"# Benchmarks {now:%Y-%m-%d %H:%M} UTC{' (quick)' if quick else ''}",
        "",
        f"Command: `uv run python -m bench{' --quick' if quick else ''}` (`make bench`). "
        f"Host: {platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"load average {os.getloadavg()[0]:.1f} at the end (the machine is shared, so "
        "absolute figures move; the ratios to the baselines measured in the same run are "
        "what to compare).",
        "",
        "| benchmark | status | seconds | command |",
        "|---|---|---:|---|",
        *[f"| {o.bench.name} | {o.status} | {o.seconds:.0f} | `{o.command}` |" for o in outcomes],
        "",
    ]
    body: list[str] = []
    for o in outcomes:
        body += [f"## {o.bench.name}", "", _body(o), ""]
    return "\n".join(head + body)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes, a few minutes")
    parser.add_argument("--only", help="comma-separated benchmark names")
    parser.add_argument(
        "--out", type=Path, help="report path (default bench/results/<date>[b, c...].md)"
    )
    args = parser.parse_args(argv)
    chosen = [b for b in BENCHES if (HERE / f"{b.name}.py").exists()]
    if args.only:
        wanted = set(args.only.split(","))
        chosen = [b for b in chosen if b.name in wanted]
    if not chosen:
        print("[bench] nothing to run", file=sys.stderr)
        return 2
    outcomes: list[Outcome] = []
    component = [b for b in chosen if b.needs_infra]
    if component:
        with infrastructure() as env:
            outcomes += [run_one(b, args.quick, env) for b in component]
    outcomes += [run_one(b, args.quick, {}) for b in chosen if not b.needs_infra]
    out = args.out or new_report_path(HERE / "results", dt.date.today())
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report(outcomes, args.quick))
    print(f"[bench] report written to {out}")
    return 0 if all(o.status == "ok" for o in outcomes) else 1


def new_report_path(folder: Path, day: dt.date) -> Path:
    """``<date>.md``, or the next free ``<date>b.md``, ``<date>c.md``...: a day's earlier
    reports are results on record, never overwritten."""
    for suffix in ["", *"bcdefghijklmnopqrstuvwxyz"]:
        path = folder / f"{day:%Y-%m-%d}{suffix}.md"
        if not path.exists():
            return path
    raise SystemExit(f"[bench] {folder} already holds 26 reports for {day}; pass --out")


if __name__ == "__main__":
    raise SystemExit(main())
