"""The analytics fold: pure rules the projections are built from.

No I/O here. The projections fold each logged event into a per-lead ``LeadJourney`` with
``fold``; the ``Effects`` it returns are what the projection tables count (stage entries
and exits, first-time milestones per inquiry cohort, revenue, attributed revenue). The
report arithmetic (rates, percentiles, ROI) is in ``metrics``, the lead plan in
``planning``, revenue attribution in ``attribution``.

Analytics records what happened; it never refuses a transition. Events of one lead from
different producers may reach the log out of occurred-at order, so durations are clamped
at zero rather than rejected.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, NamedTuple

from leadflow.analytics.attribution import Touch, attribute_all
from leadflow.analytics.segments import UNKNOWN
from leadflow.events.lifecycle import (
    MOVES,
    OPEN_STAGES,
    REENGAGEABLE_STAGES,
    STAGE_ORDER,
    Cycle,
    move_for,
)
from leadflow.events.process import built_in_process

# -- lifecycle --------------------------------------------------------------------------

# The kernel's stages, in its order (issue 30 added customer and churned).
STAGES: tuple[str, ...] = tuple(s.value for s in STAGE_ORDER)
# The demand-waterfall milestones, in order; conversion is measured between neighbours.
MILESTONES: tuple[str, ...] = ("inquiry", "mql", "sal", "sql", "opportunity", "won")
# Each milestone -> the milestones up to and including it (reaching one implies those).
_UP_TO: dict[str, tuple[str, ...]] = {m: MILESTONES[: i + 1] for i, m in enumerate(MILESTONES)}
CLOSED_STAGES: frozenset[str] = frozenset(s.value for s in STAGE_ORDER if s not in OPEN_STAGES)
_REENGAGEABLE: frozenset[str] = frozenset(s.value for s in REENGAGEABLE_STAGES)
# A deal won here, or one imported as history (``historical`` events count in the funnel by
# the lead's inquiry cohort like any other; only their dates come from the file).
WON_EVENTS: frozenset[str] = frozenset({"deal.won", "history.deal_won"})


# The kernel's table as plain strings, per cycle: (target stage, stages the event keeps a
# lead in).
_MOVES: dict[str, dict[str, tuple[str, frozenset[str]]]] = {
    cycle.value: {
        event_type: (move.target.value, frozenset(s.value for s in move.keeps))
        for event_type in MOVES
        if (move := move_for(event_type, cycle)) is not None
    }
    for cycle in Cycle
}


def stage_entered(
    event_type: str, current: str | None, cycle: str = Cycle.NEW_BUSINESS.value
) -> str | None:
    """The stage ``event_type`` moves a lead in ``current`` to, or None when it does not move
    it (the kernel's lifecycle table in the lead's ``cycle``; a hand-raise keeps an open or
    customer lead where it is). Analytics never refuses a move, so the table's allowed
    sources are not checked."""
    move = _MOVES.get(cycle, _MOVES[Cycle.NEW_BUSINESS.value]).get(event_type)
    if move is None or (current is not None and current in move[1]):
        return None
    return move[0]


def cycle_after(event_type: str, current: str | None, cycle: str) -> str:
    """The lead's buying cycle after ``event_type`` (the kernel's rule): an expansion opens
    with ``expansion.opened``; a hand-raise that re-engages a closed lead (a win-back) starts
    new business."""
    if event_type == "expansion.opened":
        return Cycle.EXPANSION.value
    if event_type in ("lead.captured", "inquiry.received") and (
        current is None or current in _REENGAGEABLE
    ):
        return Cycle.NEW_BUSINESS.value
    return cycle


# How long a lead may sit in an open stage before it counts as stuck (days): the built-in
# process definition's; the reports use the published one (``process_reports``).
DEFAULT_EXPECTED_DAYS: dict[str, float] = built_in_process().expected_days()


# -- facts and lead state -----------------------------------------------------------------


class Fact(NamedTuple):
    """One logged event as the projections see it: the payload stays a plain dict.

    A named tuple: the projection path builds one per logged event, cheaply."""

    position: int
    lead_id: str
    event_type: str
    occurred_at: datetime
    payload: Mapping[str, Any]


@dataclass(slots=True)
class LeadJourney:
    """One lead's journey as analytics has folded it so far (stored in ``analytics_fold``):
    its stage and buying cycle, the milestones it reached and when, its first-touch source
    and marketing touches, its current owner, its open money and SLA clocks. What the
    projections remember about a lead between batches."""

    stage: str | None = None
    stage_at: datetime | None = None
    # The lifecycle's buying cycle: an expansion's milestones and money are a customer's,
    # measured apart (the accounts report), not new business of the lead's inquiry cohort.
    cycle: str = Cycle.NEW_BUSINESS.value
    inquiry_at: datetime | None = None
    channel: str = UNKNOWN
    campaign: str = UNKNOWN
    form_id: str = UNKNOWN
    event_key: str = UNKNOWN
    reached: list[str] = field(default_factory=list)  # milestones reached (inferred included)
    counted: bool = False  # milestones were counted in the lead's cohort (cohort is known)
    lost: bool = False
    disqualified: bool = False
    rep_id: str = UNKNOWN  # the rep who owns the lead (never a queue)
    team_id: str = UNKNOWN
    queue_id: str = UNKNOWN  # the queue it waits in, while no rep owns it
    mql_at: datetime | None = None
    opp_at: datetime | None = None
    touches: list[Touch] = field(default_factory=list)
    # currency -> [open pipeline, won revenue, won deals]: money never mixes currencies
    money: dict[str, list[float]] = field(default_factory=dict)
    # running SLA clocks: sla_id -> [start day (ISO), breached (0/1), rep, team]
    slas: dict[str, list[Any]] = field(default_factory=dict)

    @property
    def cohort_day(self) -> date | None:
        return self.inquiry_at.date() if self.inquiry_at else None

    @property
    def open(self) -> bool:
        return self.stage is not None and self.stage not in CLOSED_STAGES

    def to_json(self, *, datetimes_as_is: bool = False) -> dict[str, Any]:
        """The state as JSON values; ``datetimes_as_is`` leaves the datetimes to an encoder
        that writes them as ISO 8601 itself (orjson: the same text as ``isoformat``, at a
        fraction of the cost on a rebuild's hundreds of thousands of states)."""
        iso = _same if datetimes_as_is else _iso
        return {
            "stage": self.stage,
            "stage_at": iso(self.stage_at),
            "cycle": self.cycle,
            "inquiry_at": iso(self.inquiry_at),
            "channel": self.channel,
            "campaign": self.campaign,
            "form_id": self.form_id,
            "event_key": self.event_key,
            "reached": self.reached,
            "counted": self.counted,
            "lost": self.lost,
            "disqualified": self.disqualified,
            "rep_id": self.rep_id,
            "team_id": self.team_id,
            "queue_id": self.queue_id,
            "mql_at": iso(self.mql_at),
            "opp_at": iso(self.opp_at),
            "touches": [[iso(t.at), t.channel, t.campaign, t.kind] for t in self.touches],
            "money": self.money,
            "slas": self.slas,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LeadJourney:
        return cls(
            stage=data.get("stage"),
            stage_at=_dt(data.get("stage_at")),
            cycle=data.get("cycle") or Cycle.NEW_BUSINESS.value,
            inquiry_at=_dt(data.get("inquiry_at")),
            channel=data.get("channel", UNKNOWN),
            campaign=data.get("campaign", UNKNOWN),
            form_id=data.get("form_id", UNKNOWN),
            event_key=data.get("event_key", UNKNOWN),
            reached=list(data.get("reached", [])),
            counted=bool(data.get("counted", False)),
            lost=bool(data.get("lost", False)),
            disqualified=bool(data.get("disqualified", False)),
            rep_id=data.get("rep_id", UNKNOWN),
            team_id=data.get("team_id", UNKNOWN),
            queue_id=data.get("queue_id", UNKNOWN),
            mql_at=_dt(data.get("mql_at")),
            opp_at=_dt(data.get("opp_at")),
            touches=[
                Touch(
                    at=_dt(t[0]) or datetime.min.replace(tzinfo=UTC),
                    channel=t[1],
                    campaign=t[2],
                    kind=t[3],
                )
                for t in data.get("touches", [])
            ],
            money={c: [float(x) for x in v] for c, v in (data.get("money") or {}).items()},
            slas={k: list(v) for k, v in (data.get("slas") or {}).items()},
        )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _same(value: datetime | None) -> datetime | None:
    return value


def _dt(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


@dataclass(frozen=True, slots=True)
class Transition:
    """The lead left ``from_stage`` (after ``seconds`` in it) and entered ``to_stage``."""

    from_stage: str | None
    to_stage: str
    at: datetime
    entered_from_at: datetime | None
    seconds: float | None


@dataclass(slots=True)
class Effects:
    """What one event changed, for the projection tables to count."""

    # Most events change nothing besides the state: the defaults are shared and immutable,
    # so building the effects of one costs no list or dict (a rebuild folds millions).
    transition: Transition | None = None
    new_milestones: Sequence[str] = ()  # counted in the lead's cohort now
    outcomes: Sequence[str] = ()  # "lost"/"disqualified" first reached
    # Outcomes that no longer hold: a reinstated lead (its do-not-contact lifted) is not a
    # disqualified lead of its cohort any more, so the funnel takes it back out.
    retracted: Sequence[str] = ()
    won: float = 0.0  # the amount won by this event, in ``currency``
    currency: str = ""
    # Money to add to the lead's cohort now: (currency, open pipeline delta, won revenue,
    # won deals). Pipeline is open opportunities only: a win, loss or exit takes it back out.
    cohort_money: Sequence[tuple[str, float, float, int]] = ()
    attributed: Mapping[str, list[tuple[str, str, float, float]]] | None = None
    # model -> [(channel, campaign, revenue share, deal credit)], in ``currency``
    sla_day: date | None = None  # an SLA event: the day its clock started
    sla_owner: tuple[str, str] = (UNKNOWN, UNKNOWN)  # (rep, team) the clock started for
    sla_verdict: str | None = None  # "on_time" | "late": the clock's one verdict, given now


def _text(value: Any) -> str:
    return str(value) if value not in (None, "") else UNKNOWN


def source_of(payload: Mapping[str, Any]) -> tuple[str, str, str, str]:
    """(channel, campaign, form, event) of an inquiry; channel falls back to capture method."""
    src = payload.get("source") or {}
    channel = src.get("channel") or payload.get("capture_method")
    campaign = src.get("campaign") or src.get("utm_campaign")
    return _text(channel), _text(campaign), _text(src.get("form_id")), _text(src.get("event_id"))


def _amount(payload: Mapping[str, Any]) -> float:
    try:
        return float(payload.get("amount") or 0)
    except (TypeError, ValueError):
        return 0.0


DEFAULT_CURRENCY = "USD"  # what routing records when a win names none and has no opportunity
OPEN_OPPORTUNITY_STAGES = frozenset({"opportunity", "on_hold"})


def _currency(payload: Mapping[str, Any]) -> str:
    return str(payload.get("currency") or DEFAULT_CURRENCY)


def _close_pipeline(state: LeadJourney) -> list[tuple[str, float, float, int]]:
    """Take the lead's open opportunities out of the pipeline (won, lost, left the stage)."""
    out = []
    for cur, m in state.money.items():
        if m[0]:
            out.append((cur, -m[0], 0.0, 0))
            m[0] = 0.0
    return out


def _fold_sla(
    state: LeadJourney, fx: Effects, event_type: str, p: Mapping[str, Any], at: datetime
) -> None:
    """SLA events count on the day their clock started, and each clock gets one verdict:
    on time (met by its deadline) or late (breached, or met late without a breach event);
    the same definition as sla-monitor's ``verdict`` (docs/metrics.md)."""
    sla_id = str(p.get("sla_id") or "")
    owner = [_text(p.get("rep_id")), _text(p.get("team_id"))]
    if event_type == "sla.started":
        state.slas[sla_id] = [at.date().isoformat(), 0, *owner]
        fx.sla_day, fx.sla_owner = at.date(), (owner[0], owner[1])
        return
    entry = state.slas.get(sla_id)
    fx.sla_day = date.fromisoformat(entry[0]) if entry else at.date()
    # The clock's owner is the one it started for (sla-monitor's ``rep_id``/``team_id``).
    fx.sla_owner = (entry[2], entry[3]) if entry and len(entry) > 3 else (owner[0], owner[1])
    if event_type == "sla.breached":
        if entry is None or not entry[1]:
            fx.sla_verdict = "late"
        if entry is not None:
            entry[1] = 1
    elif event_type == "sla.met":
        if p.get("on_time"):
            fx.sla_verdict = "on_time"
        elif entry is None or not entry[1]:
            fx.sla_verdict = "late"
        state.slas.pop(sla_id, None)
    elif event_type == "sla.stopped":
        state.slas.pop(sla_id, None)


def fold(state: LeadJourney, fact: Fact, *, attribute: bool = True) -> Effects:
    """Apply one event to ``state`` (mutated in place) and return what changed."""
    fx = Effects()
    p = fact.payload
    et = fact.event_type
    at = fact.occurred_at

    if et == "lead.captured":
        channel, campaign, form_id, event_key = source_of(p)
        if state.inquiry_at is None:
            state.inquiry_at = at
            state.channel, state.campaign, state.form_id, state.event_key = (
                channel,
                campaign,
                form_id,
                event_key,
            )
        state.touches.append(Touch(at, channel, campaign, "inquiry"))
    elif et == "inquiry.received":
        channel, campaign, _, _ = source_of(p)
        state.touches.append(Touch(at, channel, campaign, "inquiry"))
    elif et == "activity.recorded" and p.get("campaign"):
        # ``channel`` outlives an erasure; ``properties`` (personal) is only there before.
        props = p.get("properties") or {}
        channel = p.get("channel") or props.get("channel") or "activity"
        state.touches.append(Touch(at, _text(channel), _text(p.get("campaign")), "activity"))
    elif et in ("lead.assigned", "lead.reassigned"):
        # A queue is not a rep: a lead waiting in one is owned by nobody until a rep takes it.
        state.rep_id = _text(p.get("rep_id"))
        state.queue_id = UNKNOWN if p.get("rep_id") else _text(p.get("queue_id"))
        state.team_id = _text(p.get("team_id"))
    elif et.startswith("sla."):
        _fold_sla(state, fx, et, p, at)
    elif p.get("rep_id") and et in _REP_ACTIONS and state.rep_id != p["rep_id"]:
        # A rep took the lead (accepting it from a queue): they own it from now on.
        state.rep_id, state.queue_id = str(p["rep_id"]), UNKNOWN

    # A hand-raise (capture, inquiry) moves only a new or closed (lost/disqualified) lead.
    stage = stage_entered(et, state.stage, state.cycle)
    state.cycle = cycle_after(et, state.stage, state.cycle)
    expansion = state.cycle == Cycle.EXPANSION.value
    # An event from another producer may reach the log after a later stage change: it still
    # counts (milestones, revenue) but does not move the lead back in time.
    late = state.stage_at is not None and at < state.stage_at
    if et == "lead.captured" and state.stage is not None:
        late = True
        fx.transition = Transition(None, "inquiry", at, None, None)  # the entry still counts
    if stage is not None:
        if stage != state.stage and not late:
            seconds = None
            if state.stage_at is not None and state.stage is not None:
                seconds = max(0.0, (at - state.stage_at).total_seconds())
            fx.transition = Transition(state.stage, stage, at, state.stage_at, seconds)
            state.stage, state.stage_at = stage, at
        if stage == "mql" and state.mql_at is None:
            state.mql_at = at
        if stage == "opportunity" and state.opp_at is None:
            state.opp_at = at
        upto = None if expansion else _UP_TO.get(stage)
        if upto is not None:
            reached = state.reached
            new = [m for m in upto if m not in reached]
            if new:
                reached.extend(new)
                if state.counted:
                    fx.new_milestones = new
        if stage in ("lost", "disqualified") and not getattr(state, stage):
            setattr(state, stage, True)
            if state.counted:
                fx.outcomes = (stage,)

    money: list[tuple[str, float, float, int]] = []
    if et in ("deal.won", "deal.lost") or (
        stage is not None and stage not in OPEN_OPPORTUNITY_STAGES
    ):
        money += _close_pipeline(state)
    if et == "opportunity.opened" and not expansion:
        amount, cur = _amount(p), _currency(p)
        if amount:
            state.money.setdefault(cur, [0.0, 0.0, 0.0])[0] += amount
            money.append((cur, amount, 0.0, 0))
    elif et in WON_EVENTS:
        # A rep's win counts in every cycle; an expansion's money is a customer's, kept out
        # of the lead's inquiry cohort and of campaign attribution (reported apart).
        fx.won, fx.currency = _amount(p), _currency(p)
    if et in WON_EVENTS and not expansion:
        m = state.money.setdefault(fx.currency, [0.0, 0.0, 0.0])
        m[1] += fx.won
        m[2] += 1
        money.append((fx.currency, 0.0, fx.won, 1))
        if fx.won and attribute:
            fx.attributed = {
                model: [(t.channel, t.campaign, fx.won * w, w) for t, w in weights]
                for model, weights in attribute_all(
                    state.touches, at, state.mql_at, state.opp_at
                ).items()
            }

    if et == "lead.reinstated" and state.disqualified:
        state.disqualified = False
        if state.counted:
            fx.retracted = ("disqualified",)

    if et == "lead.captured" and not state.counted:
        # Every lead was an inquiry first, even when another producer's event (say
        # nurture.enrolled) reached the log before its capture and the stage did not move.
        if "inquiry" not in state.reached:
            state.reached.insert(0, "inquiry")
        # The cohort is known from now on: count everything reached so far, once.
        state.counted = True
        fx.new_milestones = [m for m in MILESTONES if m in state.reached]
        fx.outcomes = [o for o in ("lost", "disqualified") if getattr(state, o)]
        fx.cohort_money = [(cur, m[0], m[1], int(m[2])) for cur, m in state.money.items() if any(m)]
    elif money and state.counted:
        fx.cohort_money = money
    return fx


_REP_ACTIONS = frozenset(
    {
        "lead.accepted",
        "lead.contacted",
        "lead.sales_qualified",
        "opportunity.opened",
        "deal.won",
        "deal.lost",
    }
)
