"""``python -m bench.simulate`` — drive synthetic leads through a running Leadflow.

Reads the admin token and API key from ``<home>/credentials.json`` (what ``make run``
writes, ``.leadflow`` by default) unless given. Prints the expected funnel first, then
what the run did. Same seed, same population and outcomes::

    python -m bench.simulate --people 2000 --rate 50 --seed 7
    python -m bench.simulate --plan-only --people 500      # the expected funnel, no I/O
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from bench.workload import (
    RepConfig,
    Workload,
    WorkloadConfig,
    make_plan,
    new_run_prefix,
)
from leadflow.testing.platform import Endpoints


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench.simulate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--home", default=".leadflow", help="devstack state (credentials.json)")
    p.add_argument("--port-base", type=int, default=8000, help="services on base+1..+5")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--admin-token")
    p.add_argument("--api-key")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--people", type=int, default=500)
    p.add_argument("--rate", type=float, default=None, help="people per second")
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--bad-input-rate", type=float, default=0.03)
    p.add_argument("--reps", type=int, default=6)
    p.add_argument("--teams", type=int, default=2)
    p.add_argument("--p-accept", type=float, default=0.85)
    p.add_argument("--p-contact", type=float, default=0.9)
    p.add_argument("--p-qualify", type=float, default=0.6)
    p.add_argument("--p-opportunity", type=float, default=0.7)
    p.add_argument("--p-win", type=float, default=0.4)
    p.add_argument("--step-delay", type=float, nargs=2, default=(0.0, 0.5), metavar=("MIN", "MAX"))
    p.add_argument("--settle-timeout", type=float, default=180.0)
    p.add_argument(
        "--fresh-ids",
        action="store_true",
        help="prefix emails/ids with a random run id (repeat runs on one database)",
    )
    p.add_argument("--plan-only", action="store_true", help="print the expected funnel and exit")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    reps = RepConfig(
        reps=args.reps,
        teams=args.teams,
        p_accept=args.p_accept,
        p_contact=args.p_contact,
        p_qualify=args.p_qualify,
        p_opportunity=args.p_opportunity,
        p_win=args.p_win,
        accept_delay=tuple(args.step_delay),
        step_delay=tuple(args.step_delay),
    )
    config = WorkloadConfig(
        seed=args.seed,
        people=args.people,
        rate=args.rate,
        concurrency=args.concurrency,
        bad_input_rate=args.bad_input_rate,
        reps=reps,
        id_prefix=new_run_prefix() if args.fresh_ids else "",
    )
    plan = make_plan(config)
    print(json.dumps({"expected": plan.expected().as_dict()}, indent=2))
    if args.plan_only:
        return 0
    token, key = args.admin_token, args.api_key
    if token is None or key is None:
        path = Path(args.home) / "credentials.json"
        if not path.exists():
            print(
                f"no {path}: start Leadflow (make run) or pass --admin-token/--api-key",
                file=sys.stderr,
            )
            return 2
        creds = json.loads(path.read_text())
        token, key = token or creds["admin_token"], key or creds["api_key"]
    endpoints = Endpoints.local(
        port_base=args.port_base, admin_token=token, api_key=key, host=args.host
    )
    script = asyncio.run(
        Workload(endpoints, plan, log=print).run(settle_timeout=args.settle_timeout)
    )
    print(json.dumps({"script": script.summary()}, indent=2, default=str))
    return 0 if script.counts["settled"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
