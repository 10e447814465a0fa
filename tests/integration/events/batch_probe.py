"""A minimal service written as a batch handler (``leadflow.events.batch``), used to prove
what the kernel then owns: order, causation, timers, poison handling and replay.

It consumes ``leadflow.intake``. Each ``activity.recorded`` adds its ``seq`` to the lead's
tally (``tallies``: a count and the seqs in the order decided), appends a ``lead.scored``
whose ``engagement`` is the lead's count so far (so its causation and order can be checked;
``appended`` notes their ids for ``save``),
and moves the lead's ``tally:<lead>`` timer a day ahead; a ``stop`` activity cancels it
instead and a ``poison`` one can never be decided. ``save`` writes the batch's tallies with
one statement and appends a batch-level ``lead.scored`` (grade ``A+``, ``fit`` = the count)
per changed lead. ``consent.changed`` is handled per event, after the batch's earlier
events (``flush_batches``): it records the lead's count as an effect. Timers of kind
``tally`` add 100 through ``run_decision``. ``python -m tests.integration.events.batch_probe``
runs it as a process (the SIGKILL test).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from leadflow.events.batch import Appended, Decision, flush_batches, on_batch, run_decision
from leadflow.events.catalogue.intake import ActivityRecorded, ConsentChanged
from leadflow.events.catalogue.scoring import LeadScored
from leadflow.events.clock import Clock, SystemClock
from leadflow.events.envelope import Envelope
from leadflow.events.kit import ServiceKit
from leadflow.events.sql import Tx
from leadflow.events.timers import Timer
from leadflow.events.uow import UnitOfWork

from .probe import MIGRATIONS, ProbeSettings, serve

TALLY = "tally"


@dataclass(frozen=True)
class Tally:
    n: int = 0
    seqs: tuple[int, ...] = ()


@dataclass(frozen=True)
class TallyContext:
    now: datetime
    # the events each lead's decisions appended in this batch (``appended``), by id
    appended: dict[uuid.UUID, list[uuid.UUID]] = field(default_factory=dict)


def scored(n: float, *, grade: str = "B", engagement: float = 0) -> LeadScored:
    return LeadScored(
        fit=n,
        engagement=engagement,
        grade=grade,
        engagement_level=2,
        matrix_cell="B2",
        model_version=1,
    )


def timer_key(lead_id: uuid.UUID) -> str:
    return f"tally:{lead_id}"


def add(state: Tally | None, seq: int) -> Tally:
    before = state or Tally()
    return Tally(before.n + 1, (*before.seqs, seq))


class TallyHandler:
    """The probe's batch handler. ``crash_saves``: how many saves fail (a lost connection,
    transient) after the batch was decided — the consumer retries the whole batch."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.crash_saves = 0
        self.batches: list[int] = []  # each batch's size, as the kernel handed it
        self.saved_appended: dict[uuid.UUID, list[uuid.UUID]] = {}  # what save was told

    async def context(self, tx: Tx, events: Sequence[Envelope]) -> TallyContext:
        self.batches.append(len(events))
        return TallyContext(self.clock.now())

    async def load(
        self, tx: Tx, lead_ids: Sequence[uuid.UUID], ctx: TallyContext
    ) -> dict[uuid.UUID, Tally]:
        rows = await tx.fetch(
            "SELECT lead_id, n, seqs FROM tallies WHERE lead_id = ANY(CAST(:ids AS uuid[])) "
            "FOR UPDATE",
            ids=list(lead_ids),
        )
        return {row.lead_id: Tally(row.n, tuple(row.seqs)) for row in rows}

    def decide(self, state: Tally | None, event: Envelope, ctx: TallyContext) -> Decision[Tally]:
        payload = event.payload
        assert isinstance(payload, ActivityRecorded)
        if payload.activity_type == "poison":
            raise ValueError("this activity can never be decided")
        after = add(state, int(payload.properties["seq"]))
        key = timer_key(event.lead_id)
        if payload.activity_type == "stop":
            return Decision(state=after, cancel=[key])
        due = ctx.now + timedelta(days=1)
        return Decision(
            state=after,
            events=[scored(after.seqs[-1], engagement=after.n)],
            schedule=[Timer(key, TALLY, due, {"seq": after.seqs[-1]}, event.lead_id)],
        )

    def appended(
        self, lead_id: uuid.UUID, envelopes: Sequence[Envelope], ctx: TallyContext
    ) -> None:
        ctx.appended.setdefault(lead_id, []).extend(e.event_id for e in envelopes)

    async def save(
        self, tx: Tx, changed: Mapping[uuid.UUID, Tally], ctx: TallyContext
    ) -> Sequence[Appended]:
        if not changed:
            return ()
        await tx.execute(
            "INSERT INTO tallies (lead_id, n, seqs) "
            "SELECT l, n, ARRAY(SELECT jsonb_array_elements_text(s)::int) FROM unnest("
            "CAST(:leads AS uuid[]), CAST(:ns AS integer[]), CAST(:seqs AS jsonb[])) "
            "AS t(l, n, s) "
            "ON CONFLICT (lead_id) DO UPDATE SET n = EXCLUDED.n, seqs = EXCLUDED.seqs",
            leads=list(changed),
            ns=[t.n for t in changed.values()],
            seqs=[str(list(t.seqs)) for t in changed.values()],
        )
        if self.crash_saves > 0:
            self.crash_saves -= 1
            raise ConnectionResetError("the database went away before the commit")
        for lead, ids in ctx.appended.items():
            self.saved_appended.setdefault(lead, []).extend(ids)
        return [Appended(lead, [scored(t.n, grade="A+")]) for lead, t in changed.items()]


class Probe:
    """The probe's handlers around one ``TallyHandler``."""

    def __init__(self, clock: Clock) -> None:
        self.tally = TallyHandler(clock)

    async def on_consent(self, event: Envelope, uow: UnitOfWork) -> None:
        """Per event, after the batch's earlier events: the lead's count as an effect."""
        await flush_batches(uow)
        n = await uow.tx.fetchval("SELECT n FROM tallies WHERE lead_id = :l", l=event.lead_id)
        await uow.tx.execute(
            "INSERT INTO effects (event_id, lead_id, seq) VALUES (:e, :l, :n)",
            e=event.event_id,
            l=event.lead_id,
            n=n or 0,
        )

    async def on_tally_timer(self, timer: Timer, uow: UnitOfWork) -> None:
        assert timer.lead_id is not None

        def bonus(state: Tally | None, ctx: TallyContext) -> Decision[Tally]:
            return Decision(state=add(state, 100), events=[scored(100, grade="A")])

        await run_decision(uow, self.tally, timer.lead_id, bonus)


def make_batch_kit(settings: ProbeSettings, clock: Clock | None = None) -> tuple[ServiceKit, Probe]:
    clock = clock or SystemClock()
    probe = Probe(clock)
    tally = on_batch(probe.tally)
    kit: ServiceKit = ServiceKit(
        settings,
        consumes=["intake"],
        handlers={ActivityRecorded: tally, ConsentChanged: probe.on_consent},
        timer_handlers={TALLY: probe.on_tally_timer},
        clock=clock,
        migrations_dir=MIGRATIONS,
    )
    return kit, probe


def activity(lead_id: uuid.UUID, seq: int, kind: str = "page_view") -> Envelope:
    return Envelope.new(
        ActivityRecorded(activity_id=f"a{seq}", activity_type=kind, properties={"seq": str(seq)}),
        lead_id=lead_id,
    )


def consent(lead_id: uuid.UUID) -> Envelope:
    return Envelope.new(ConsentChanged(marketing_opt_in=True), lead_id=lead_id)


async def main() -> None:
    """Run the batch probe as a process (the SIGKILL test starts this)."""
    kit, _ = make_batch_kit(ProbeSettings())
    await serve(kit, "batch probe")


if __name__ == "__main__":
    import asyncio
    import os

    os.environ.setdefault("LEADFLOW_LOG_JSON", "false")
    asyncio.run(main())
