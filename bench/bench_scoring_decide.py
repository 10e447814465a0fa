"""Scoring's pure decisions alone: CPU per lead of deciding the pipeline's leads.

Not a test. No broker, no database: the built-in model and tracks, and per lead what
``bench/pipeline.py`` makes scoring decide (a sales-ready ``lead.captured`` — the inquiry of
``leadflow.testing.platform.inquiry_body`` — then routing's ``lead.assigned``), in batches of
ten leads through the kernel's pure fold (``decide_each``), as a consumer batch is::

    uv run python bench/bench_scoring_decide.py [--leads 4000] [--repeat 7] [--profile]

Prints the best of ``--repeat`` runs (CPU time of this process per lead), which the machine's
other load disturbs least; compare two trees by running it in each, alternated.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
import uuid
from datetime import UTC, datetime

from leadflow.events.batch import decide_each
from leadflow.events.catalogue.intake import Contact, LeadCaptured, QualificationAnswers
from leadflow.events.catalogue.routing import LeadAssigned
from leadflow.events.clock import ManualClock
from leadflow.events.envelope import Envelope
from leadflow.scoring.batch import ScoringBatch
from leadflow.scoring.builtin import default_model, default_tracks
from leadflow.scoring.state import ScoredLead, ScoringContext

NOW = datetime.now(UTC)
BATCH_LEADS = 10
Batch = tuple[dict[uuid.UUID, ScoredLead], list[Envelope]]


def lead_events(n: int) -> tuple[uuid.UUID, list[Envelope]]:
    lead = uuid.uuid4()
    captured = LeadCaptured(
        inquiry_id=uuid.uuid4(),
        capture_method="web_form",
        contact=Contact(
            email=f"buyer{n}@acme{n % 211}.example",
            first_name="Pat",
            last_name=f"Buyer{n}",
            title="Chief Executive Officer",
            department="Management",
            company=f"Acme {n % 211}",
            industry="Software",
            country="India",
        ),
        answers=QualificationAnswers(
            compelling_event="contract renewal",
            timeframe="this quarter",
            budget="50k",
            authority="yes, I sign",
            company_size="1000",
            product_interest="platform",
            opportunity_size="100k",
        ),
        email_domain=f"acme{n % 211}.example",
        rating="hot",
    )
    assigned = LeadAssigned(assignee_kind="rep", rep_id="rep-1", method="round_robin")
    return lead, [
        Envelope.new(captured, lead_id=lead, occurred_at=NOW),
        Envelope.new(assigned, lead_id=lead, occurred_at=NOW),
    ]


def batches(leads: int) -> list[Batch]:
    out: list[Batch] = []
    for b in range(max(1, leads // BATCH_LEADS)):
        states: dict[uuid.UUID, ScoredLead] = {}
        events: list[Envelope] = []
        for i in range(BATCH_LEADS):
            lead, evs = lead_events(b * BATCH_LEADS + i)
            states[lead] = ScoredLead.new(lead)
            events += evs
        out.append((states, events))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--leads", type=int, default=4000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    handler = ScoringBatch(ManualClock(NOW))
    ctx = ScoringContext(now=NOW, model=default_model(), tracks=tuple(default_tracks()))
    work = batches(args.leads)
    leads = len(work) * BATCH_LEADS

    def run() -> int:
        appended = 0
        for states, events in work:
            appended += len(decide_each(handler, states, events, ctx).appends)
        return appended

    appended = run()  # warm: the model compiled, caches filled
    best = float("inf")
    for _ in range(args.repeat):
        started = time.process_time()
        run()
        best = min(best, time.process_time() - started)
    print(f"{leads} leads, {appended} appends per run")
    print(f"decide: {best / leads * 1000:.3f} ms CPU per lead (best of {args.repeat})")
    if args.profile:
        profiler = cProfile.Profile()
        profiler.runcall(run)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
