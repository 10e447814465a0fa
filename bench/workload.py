"""Seeded, reproducible synthetic traffic through Leadflow's public HTTP APIs only.

Why: the demo, the end-to-end tests, the fault suite and the pipeline benchmark all need the
same believable population — web forms with UTM sources, badge-scan batches (some uploaded
late, some replayed), activity streams, returning visitors, duplicates with typos, bad input
— and simulated reps working their queues. Everything a run does is decided up front by
:func:`make_plan` from a seed (pure, no I/O), so the *expected* funnel is known before the
first request; :class:`Workload` then executes the plan over HTTP and counts what it did in a
:class:`Script`, so a test can compare analytics' figures with both.

Library use::

    from bench.workload import Endpoints, RepConfig, Workload, WorkloadConfig, make_plan

    endpoints = Endpoints.local(port_base=8000, admin_token=..., api_key=...)
    config = WorkloadConfig(seed=7, people=400, rate=None, reps=RepConfig(step_delay=(0, 0.2)))
    plan = make_plan(config)            # pure: plan.expected() is the funnel this must produce
    async with Workload(endpoints, plan) as wl:
        await wl.setup()                # form, scanner keys, routing reps/teams/rules
        async with wl.reps_working():   # simulated reps poll their queues while capture runs
            await wl.capture()          # inquiries, forms, scans, activities, bad input
            await wl.wait_settled(timeout=120)   # every qualified lead finished its fate
    print(wl.script.summary())

or ``await Workload(endpoints, plan).run()`` for all of it. Command line: ``python -m
bench.simulate --help``.

Determinism: the people, their profiles, channels, activities and each qualified lead's
fate (accept/reject, contact, qualify, opportunity, won/lost) come from the seed; timing
(concurrency, delays) does not change the outcome. Follow-up traffic that would re-open a
lead (a returning visitor's second inquiry, a duplicate with a typo) is drawn from the
people who can never qualify under the default scoring model, so funnel counts stay exact.

Scoring: the profiles are built against the scoring service's DEFAULT model — ``hot``
people (VP/C-level at a 1000+ software company with BANT answers, business email) grade A
and reach MQL on their inquiry plus a pricing-page visit (cell A3); ``warm`` people grade B
and reach MQL only with their activity stream (two downloads + an event visit: cell B2);
``cold`` people use free mail and grade D (never MQL); ``student`` people are disqualified.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
import time
import uuid
import zlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import httpx

from leadflow.events.waiting import wait_event
from leadflow.testing.platform.endpoints import Endpoints

ProfileClass = Literal["hot", "warm", "cold", "student"]
Capture = Literal["api", "form", "scan"]
Action = Literal[
    "accept", "reject", "contacted", "qualify", "opportunity", "won", "lost", "recycle"
]

FORM_ORIGIN = "https://www.leadflow-demo.com"

# (channel, utm_source, utm_medium, utm_campaign) for API inquiries from the website backend.
API_SOURCES: tuple[tuple[str, str, str, str | None], ...] = (
    ("paid_search", "google", "cpc", "spring-search"),
    ("social", "linkedin", "paid_social", "q3-linkedin"),
    ("email", "newsletter", "email", "monthly-newsletter"),
    ("organic", "google", "organic", None),
    ("webinar", "zoom", "webinar", "product-webinar"),
)
# (utm_source, utm_medium, utm_campaign) posted by the public web form.
FORM_SOURCES: tuple[tuple[str, str, str], ...] = (
    ("google", "cpc", "spring-search"),
    ("facebook", "paid_social", "brand-awareness"),
    ("bing", "cpc", "spring-search"),
)
TRADE_SHOWS: tuple[tuple[str, str], ...] = (
    ("saastr-2025", "events-saastr"),
    ("web-summit-2025", "events-websummit"),
)

FIRST = ("Ana", "Ben", "Chloe", "David", "Emma", "Farid", "Grace", "Hugo", "Ines", "Jonas",
         "Kira", "Liam", "Maya", "Noah", "Olga", "Priya", "Quinn", "Ravi", "Sara", "Tom",
         "Uma", "Victor", "Wen", "Yusuf", "Zoe")  # fmt: skip
LAST = ("Andersen", "Baker", "Costa", "Dubois", "Evans", "Fischer", "Garcia", "Hansen",
        "Iyer", "Jansen", "Kowalski", "Lopez", "Meyer", "Nakamura", "Okafor", "Patel",
        "Quist", "Rossi", "Schmidt", "Tanaka", "Ueda", "Varga", "Weber", "Young")  # fmt: skip
WORDS = ("bright", "north", "blue", "river", "summit", "cedar", "quantum", "harbor", "nova",
         "pixel", "atlas", "ember", "lumen", "orbit", "vertex", "willow")  # fmt: skip
SUFFIX = ("labs", "systems", "analytics", "works", "cloud", "group", "logic", "data")
COUNTRIES = ("United States", "Germany", "United Kingdom", "India", "Australia", "Brazil")

HOT_TITLES = ("VP of Sales", "Chief Technology Officer", "VP Marketing", "CEO")
WARM_TITLES = ("Marketing Manager", "Sales Manager", "IT Manager")
COLD_TITLES = ("Teacher", "Freelancer", None, "Assistant")
REJECT_CODES = ("not_icp", "bad_contact_data", "no_budget", "wrong_territory")
LOST_CODES = ("price", "competitor", "no_decision", "timing")


# ---------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RepConfig:
    """How simulated reps behave. Probabilities are per qualified lead and step."""

    reps: int = 6
    teams: int = 2
    p_accept: float = 0.85  # else reject back to marketing
    p_contact: float = 0.9  # else recycle (no_response)
    p_qualify: float = 0.6  # else recycle (not_ready)
    p_opportunity: float = 0.7  # else recycle (budget_next_period)
    p_win: float = 0.4  # else lost
    accept_delay: tuple[float, float] = (0.0, 1.0)  # seconds before the first action
    step_delay: tuple[float, float] = (0.0, 0.5)  # seconds between later actions
    poll_interval: float = 0.5  # how often each rep looks at their queue
    max_concurrent_leads: int = 64  # leads being worked at once, all reps together


@dataclass(frozen=True)
class WorkloadConfig:
    """What population to generate. Shares are fractions of ``people``."""

    seed: int = 42
    people: int = 500
    capture_mix: Mapping[str, float] = field(
        default_factory=lambda: {"api": 0.55, "form": 0.2, "scan": 0.25}
    )
    profile_mix: Mapping[str, float] = field(
        default_factory=lambda: {"hot": 0.3, "warm": 0.15, "cold": 0.5, "student": 0.05}
    )
    anonymous_browsing_share: float = 0.3  # browsed before identifying (anonymous_id)
    returning_share: float = 0.1  # of non-qualifying people: a second inquiry later
    typo_duplicate_share: float = 0.05  # of non-qualifying people: re-submit, email typo
    bad_input_rate: float = 0.03  # extra invalid requests/items, per person
    scan_devices: int = 3
    scan_batch_size: int = 20
    late_batch_share: float = 0.2  # scan batches uploaded only after everything else
    replay_batch_share: float = 0.15  # scan batches uploaded twice (device retry)
    rate: float | None = None  # people per second; None = as fast as concurrency allows
    concurrency: int = 16
    reps: RepConfig = RepConfig()
    id_prefix: str = ""  # distinguishes runs against one database (emails, keys, ids)
    scoring_model: Mapping[str, Any] | None = None  # published before capture when given


# ---------------------------------------------------------------------------------------
# The plan (pure)
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fate:
    """The actions a rep takes on a qualified lead, in order (decided up front)."""

    steps: tuple[Action, ...]
    amount: int = 0
    reason_code: str | None = None

    @property
    def outcome(self) -> str:
        last = self.steps[-1]
        return {"reject": "rejected", "recycle": "recycled"}.get(last, last)


@dataclass(frozen=True)
class Person:
    key: int
    profile: ProfileClass
    capture: Capture
    email: str
    first_name: str
    last_name: str
    phone: str
    company: str | None
    title: str | None
    department: str | None
    industry: str | None
    country: str
    company_size: str | None
    answers: Mapping[str, str]
    channel: str  # the source channel analytics reports
    utm: Mapping[str, str]
    campaign: str | None
    event_id: str | None  # trade show for scans
    rating: str | None
    marketing_opt_in: bool
    anonymous_id: str | None
    activities: tuple[Mapping[str, Any], ...]  # sent before the inquiry (claimed by email)
    anonymous_views: int  # page views under anonymous_id before identifying
    returning: bool
    typo_duplicate: bool
    fate: Fate | None  # only for people who reach MQL

    @property
    def expected_mql(self) -> bool:
        return self.profile in ("hot", "warm")

    def contact(self, email: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "email": email or self.email,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "phone": self.phone,
            "country": self.country,
        }
        for name in ("company", "title", "department", "industry"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out


@dataclass(frozen=True)
class ScanBatch:
    device: int
    event_id: str
    campaign: str
    people: tuple[int, ...]  # Person.key
    bad_items: int
    late: bool
    replay: bool


@dataclass(frozen=True)
class Expected:
    """The funnel the plan must produce.

    ``leads`` counts people; ``captured`` adds the duplicates with a typo, each of which
    intake captures as a lead of its own before merging it into the person's lead (by phone).
    """

    leads: int
    captured: int
    captured_by_channel: Mapping[str, int]
    mql: int
    disqualified: int
    sal: int
    sql: int
    opportunity: int
    won: int
    lost: int
    rejected: int
    recycled: int
    leads_by_channel: Mapping[str, int]
    mql_by_channel: Mapping[str, int]
    won_by_channel: Mapping[str, int]
    bad_requests: int
    scan_items: int
    scan_replayed_items: int

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Plan:
    config: WorkloadConfig
    people: tuple[Person, ...]
    scan_batches: tuple[ScanBatch, ...]
    bad_requests: int  # invalid API inquiries / form posts / activity items to send

    def person(self, key: int) -> Person:
        return self.people[key]

    def expected(self) -> Expected:
        reached: Counter[str] = Counter()
        by_channel: Counter[str] = Counter()
        mql_by_channel: Counter[str] = Counter()
        won_by_channel: Counter[str] = Counter()
        for p in self.people:
            by_channel[p.channel] += 1
            if p.profile == "student":
                reached["disqualified"] += 1
            if p.fate is None:
                continue
            reached["mql"] += 1
            mql_by_channel[p.channel] += 1
            steps = p.fate.steps
            for action, stage in (
                ("accept", "sal"),
                ("qualify", "sql"),
                ("opportunity", "opportunity"),
                ("won", "won"),
                ("lost", "lost"),
                ("reject", "rejected"),
                ("recycle", "recycled"),
            ):
                if action in steps:
                    reached[stage] += 1
            if "won" in steps:
                won_by_channel[p.channel] += 1
        scan_items = sum(len(b.people) for b in self.scan_batches)
        captured_by_channel = Counter(by_channel)
        for p in self.people:
            if p.typo_duplicate:
                captured_by_channel[p.channel] += 1
        return Expected(
            leads=len(self.people),
            captured=sum(captured_by_channel.values()),
            captured_by_channel=dict(captured_by_channel),
            mql=reached["mql"],
            disqualified=reached["disqualified"],
            sal=reached["sal"],
            sql=reached["sql"],
            opportunity=reached["opportunity"],
            won=reached["won"],
            lost=reached["lost"],
            rejected=reached["rejected"],
            recycled=reached["recycled"],
            leads_by_channel=dict(by_channel),
            mql_by_channel=dict(mql_by_channel),
            won_by_channel=dict(won_by_channel),
            bad_requests=self.bad_requests + sum(b.bad_items for b in self.scan_batches),
            scan_items=scan_items,
            scan_replayed_items=sum(len(b.people) for b in self.scan_batches if b.replay),
        )


def _pick(rng: random.Random, mix: Mapping[str, float]) -> str:
    keys = sorted(mix)
    return rng.choices(keys, weights=[mix[k] for k in keys])[0]


def decide_fate(rng: random.Random, reps: RepConfig) -> Fate:
    """One qualified lead's path through sales, drawn with the configured probabilities."""
    if rng.random() >= reps.p_accept:
        return Fate(("reject",), reason_code=rng.choice(REJECT_CODES))
    if rng.random() >= reps.p_contact:
        return Fate(("accept", "recycle"), reason_code="no_response")
    if rng.random() >= reps.p_qualify:
        return Fate(("accept", "contacted", "recycle"), reason_code="not_ready")
    if rng.random() >= reps.p_opportunity:
        return Fate(("accept", "contacted", "qualify", "recycle"), reason_code="budget_next_period")
    amount = rng.randrange(5, 200) * 500
    if rng.random() >= reps.p_win:
        return Fate(
            ("accept", "contacted", "qualify", "opportunity", "lost"),
            amount=amount,
            reason_code=rng.choice(LOST_CODES),
        )
    return Fate(("accept", "contacted", "qualify", "opportunity", "won"), amount=amount)


def _activities(rng: random.Random, profile: ProfileClass) -> list[dict[str, Any]]:
    acts: list[dict[str, Any]] = []
    if profile == "hot":
        acts.append({"type": "page_view", "url": "https://www.leadflow-demo.com/pricing"})
        acts.append({"type": "page_view", "url": "https://www.leadflow-demo.com/product"})
    elif profile == "warm":
        acts.append({"type": "content_download", "content_id": "buyers-guide"})
        acts.append({"type": "content_download", "content_id": "roi-calculator"})
        acts.append({"type": "event_visit", "campaign": "roadshow"})
        acts.append({"type": "page_view", "url": "https://www.leadflow-demo.com/blog/1"})
    else:
        for _ in range(rng.randrange(0, 3)):
            acts.append(
                {
                    "type": rng.choice(("page_view", "email_open", "video_view")),
                    "url": "https://www.leadflow-demo.com/blog/" + str(rng.randrange(50)),
                }
            )
    return acts


def make_plan(config: WorkloadConfig) -> Plan:
    """Every person, scan batch and fate of a run, from the seed alone (no I/O)."""
    rng = random.Random(config.seed)
    prefix = config.id_prefix
    people: list[Person] = []
    for key in range(config.people):
        prng = random.Random(f"{config.seed}:person:{key}")
        profile: ProfileClass = _pick(prng, config.profile_mix)  # type: ignore[assignment]
        capture: Capture = _pick(prng, config.capture_mix)  # type: ignore[assignment]
        first, last = prng.choice(FIRST), prng.choice(LAST)
        country = prng.choice(COUNTRIES)
        # A phone unique to this person and run (the number embeds the key), so identity
        # resolution by phone only joins the duplicates this plan makes on purpose.
        exchange = 200 + zlib.crc32(f"{prefix}{key // 10000}".encode()) % 800
        phone = f"+1 415 {exchange} {key % 10000:04d}"
        company_word = f"{prng.choice(WORDS)}{prng.choice(WORDS)}"
        company = f"{company_word.title()} {prng.choice(SUFFIX).title()}"
        domain = f"{company_word}-{key}.com"
        local = f"{first}.{last}.{prefix}{key}".lower()
        if profile in ("hot", "warm"):
            email = f"{local}@{domain}"
        else:
            email = f"{local}@{prng.choice(('gmail.com', 'yahoo.com', 'outlook.com'))}"
        answers: dict[str, str] = {}
        department = industry = size = None
        title: str | None
        if profile == "hot":
            title = prng.choice(HOT_TITLES)
            department, industry, size = "Sales", "Software", "1000+"
            answers = {
                "compelling_event": "contract renewal",
                "authority": "yes",
                "timeframe": "this quarter",
                "budget": "50k",
            }
        elif profile == "warm":
            title = prng.choice(WARM_TITLES)
            department, industry, size = "Marketing", "Manufacturing", "200-499"
            answers = {"timeframe": "this quarter"}
        elif profile == "student":
            title = "Student"
        else:
            title = prng.choice(COLD_TITLES)
        if capture == "api":
            channel, usrc, umed, ucamp = prng.choice(API_SOURCES)
        elif capture == "form":
            usrc, umed, ucamp = prng.choice(FORM_SOURCES)
            channel = "web_form"
        else:
            channel, usrc, umed, ucamp = "badge_scan", "", "", None
        utm = {
            k: v
            for k, v in (("utm_source", usrc), ("utm_medium", umed), ("utm_campaign", ucamp))
            if v
        }
        event_id = None
        if capture == "scan":
            event_id, ucamp = TRADE_SHOWS[key % len(TRADE_SHOWS)]
        can_follow_up = profile == "cold"
        anonymous = prng.random() < config.anonymous_browsing_share and capture != "scan"
        fate = (
            decide_fate(random.Random(f"{config.seed}:fate:{key}"), config.reps)
            if profile in ("hot", "warm")
            else None
        )
        people.append(
            Person(
                key=key,
                profile=profile,
                capture=capture,
                email=email,
                first_name=first,
                last_name=last,
                phone=phone,
                company=company if profile != "student" else None,
                title=title,
                department=department,
                industry=industry,
                country=country,
                company_size=size,
                answers=answers,
                channel=channel,
                utm=utm,
                campaign=ucamp,
                event_id=event_id,
                rating="hot" if (capture == "scan" and profile == "hot") else None,
                marketing_opt_in=True,
                anonymous_id=f"anon-{prefix}{key}" if anonymous else None,
                activities=tuple(_activities(prng, profile)),
                anonymous_views=prng.randrange(1, 4) if anonymous else 0,
                returning=can_follow_up and prng.random() < config.returning_share,
                typo_duplicate=can_follow_up
                and capture == "api"
                and prng.random() < config.typo_duplicate_share,
                fate=fate,
            )
        )
    # Scan batches: scan people grouped per trade show, spread over the devices.
    batches: list[ScanBatch] = []
    for event_id, campaign in TRADE_SHOWS:
        keys = [p.key for p in people if p.capture == "scan" and p.event_id == event_id]
        for start in range(0, len(keys), config.scan_batch_size):
            chunk = tuple(keys[start : start + config.scan_batch_size])
            bad = sum(rng.random() < config.bad_input_rate for _ in chunk)
            batches.append(
                ScanBatch(
                    device=len(batches) % max(1, config.scan_devices),
                    event_id=event_id,
                    campaign=campaign,
                    people=chunk,
                    bad_items=bad,
                    late=rng.random() < config.late_batch_share,
                    replay=rng.random() < config.replay_batch_share,
                )
            )
    non_scan = sum(1 for p in people if p.capture != "scan")
    bad_requests = sum(rng.random() < config.bad_input_rate for _ in range(non_scan))
    return Plan(config, tuple(people), tuple(batches), bad_requests)


def typo(email: str) -> str:
    """The same address with two neighbouring letters of the local part swapped."""
    local, domain = email.split("@", 1)
    i = max(0, min(len(local) - 2, 1))
    return local[:i] + local[i + 1] + local[i] + local[i + 2 :] + "x@" + domain


# ---------------------------------------------------------------------------------------
# The script: what the run actually did
# ---------------------------------------------------------------------------------------


@dataclass
class Script:
    """Counters of everything the workload sent and what the platform answered."""

    counts: Counter[str] = field(default_factory=Counter)
    lead_of_person: dict[int, str] = field(default_factory=dict)  # Person.key -> lead id
    person_of_lead: dict[str, int] = field(default_factory=dict)
    actions: list[tuple[str, str, str, int]] = field(
        default_factory=list
    )  # lead, action, rep, status
    finished: dict[str, str] = field(default_factory=dict)  # lead -> outcome of its fate
    errors: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def note_lead(self, person: int, lead_id: str) -> None:
        self.lead_of_person.setdefault(person, lead_id)
        self.person_of_lead.setdefault(lead_id, person)

    def summary(self) -> dict[str, Any]:
        return {
            "elapsed_s": round(time.monotonic() - self.started, 1),
            "leads": len(self.lead_of_person),
            "finished_fates": len(self.finished),
            "outcomes": dict(Counter(self.finished.values())),
            "counts": dict(sorted(self.counts.items())),
            "errors": self.errors[:10],
        }


# ---------------------------------------------------------------------------------------
# Execution over HTTP
# ---------------------------------------------------------------------------------------


def _now() -> str:
    return datetime.now(UTC).isoformat()


FateFor = Callable[[str, int], Fate | None]  # (lead_id, cycle) -> the rep's plan


class Workload:
    """Executes a :class:`Plan` against running services. Use as an async context manager."""

    def __init__(
        self,
        endpoints: Endpoints,
        plan: Plan,
        *,
        client: httpx.AsyncClient | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.endpoints = endpoints
        self.plan = plan
        self.config = plan.config
        self.script = Script()
        self._client = client
        self._own_client = client is None
        self._sem = asyncio.Semaphore(self.config.concurrency)
        # Reps have their own budget so that a busy capture never starves their actions.
        self._rep_sem = asyncio.Semaphore(max(4, self.config.concurrency // 2))
        self._device_keys: list[str] = []
        self._rep_tokens: dict[str, str] = {}
        self._form_key = f"wl-{self.config.id_prefix}{self.config.seed}".replace("_", "-")[:64]
        self.rep_ids = [f"rep-{self.config.id_prefix}{i}" for i in range(self.config.reps.reps)]
        self.team_ids = [f"team-{self.config.id_prefix}{i}" for i in range(self.config.reps.teams)]
        self.queue_id = f"queue-{self.config.id_prefix}overflow"
        self.fate_for: FateFor = self._planned_fate
        self._log = log or (lambda _m: None)

    # -- plumbing -----------------------------------------------------------------------

    async def __aenter__(self) -> Workload:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(30.0),
                limits=httpx.Limits(max_connections=self.config.concurrency * 2 + 16),
            )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._own_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    @property
    def client(self) -> httpx.AsyncClient:
        assert self._client is not None, "use `async with Workload(...)`"
        return self._client

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.endpoints.admin_token}"}

    def as_rep(self, rep_id: str) -> dict[str, str]:
        """A rep's own token (issued in setup), or the admin token before setup ran."""
        token = self._rep_tokens.get(rep_id)
        return {"Authorization": f"Bearer {token}"} if token else self.admin

    async def request(
        self, method: str, url: str, *, what: str, retries: int = 8, **kwargs: Any
    ) -> httpx.Response:
        """One call with bounded concurrency; 429/503 and connection errors are retried
        with backoff (Retry-After honoured), everything else is returned to the caller."""
        delay = 0.2
        for attempt in range(retries + 1):
            try:
                async with self._rep_sem if what.startswith("rep.") else self._sem:
                    response = await self.client.request(method, url, **kwargs)
            except httpx.TransportError as exc:
                self.script.counts[f"{what}.transport_error"] += 1
                if attempt == retries:
                    raise
                self._log(f"{what}: {exc!r}; retrying")
            else:
                if response.status_code not in (429, 503) or attempt == retries:
                    return response
                self.script.counts[f"{what}.http_{response.status_code}"] += 1
                with contextlib.suppress(ValueError):
                    delay = max(delay, float(response.headers.get("Retry-After", delay)))
            await asyncio.sleep(min(delay, 5.0))
            delay *= 2
        raise AssertionError("unreachable")

    async def _ok(self, method: str, url: str, what: str, **kwargs: Any) -> httpx.Response:
        response = await self.request(method, url, what=what, **kwargs)
        if response.status_code >= 400:
            raise RuntimeError(
                f"{what}: {method} {url} -> {response.status_code} {response.text[:500]}"
            )
        return response

    # -- setup --------------------------------------------------------------------------

    async def setup(self) -> None:
        """Web form, one API key per scanner device, and the sales roster and rules."""
        e = self.endpoints
        await self._ok(
            "PUT",
            f"{e.intake}/v1/admin/forms/{self._form_key}",
            "setup.form",
            headers=self.admin,
            json={
                "name": "Workload demo form",
                "allowed_origins": [FORM_ORIGIN],
                "campaign": "website",
                "required": ["email"],
            },
        )
        self._device_keys = []
        for device in range(max(1, self.config.scan_devices)):
            r = await self._ok(
                "POST",
                f"{e.intake}/v1/admin/api-keys",
                "setup.device_key",
                headers=self.admin,
                json={
                    "name": f"scanner {device}",
                    "scopes": ["scans"],
                    "device_id": f"scanner-{self.config.id_prefix}{device}",
                },
            )
            self._device_keys.append(r.json()["key"])
        await self._ok(
            "PUT",
            f"{e.routing}/v1/routing/queues/{self.queue_id}",
            "setup.queue",
            headers=self.admin,
            json={"name": "Overflow"},
        )
        members: dict[str, list[str]] = {t: [] for t in self.team_ids}
        for i, rep_id in enumerate(self.rep_ids):
            team = self.team_ids[i % len(self.team_ids)]
            members[team].append(rep_id)
            await self._ok(
                "PUT",
                f"{e.routing}/v1/routing/reps/{rep_id}",
                "setup.rep",
                headers=self.admin,
                json={"name": f"Rep {i}", "team_id": team},
            )
            # Each simulated rep works with a personal token, as real reps do.
            issued = await self._ok(
                "POST",
                f"{e.routing}/v1/routing/reps/{rep_id}/tokens",
                "setup.rep_token",
                headers=self.admin,
                json={"name": "workload"},
            )
            self._rep_tokens[rep_id] = issued.json()["token"]
        for team, reps_in in members.items():
            await self._ok(
                "PUT",
                f"{e.routing}/v1/routing/teams/{team}",
                "setup.team",
                headers=self.admin,
                json={"name": team, "members": reps_in, "queue_id": self.queue_id},
            )
        # Grade A leads go to the first team round-robin, the rest to the others least-loaded.
        rules = [
            {
                "id": f"{self.config.id_prefix}grade-a",
                "when": {"grade": ["A"]},
                "target": {
                    "kind": "team",
                    "team_id": self.team_ids[0],
                    "strategy": "round_robin",
                    "respect_territories": False,
                },
            }
        ]
        for team in self.team_ids[1:] or self.team_ids:
            rules.append(
                {
                    "id": f"{self.config.id_prefix}rest-{team}",
                    "target": {
                        "kind": "team",
                        "team_id": team,
                        "strategy": "least_loaded",
                        "respect_territories": False,
                    },
                }
            )
        await self._ok(
            "POST",
            f"{e.routing}/v1/routing/rules",
            "setup.rules",
            headers=self.admin,
            json={"rules": rules, "default_queue_id": self.queue_id, "published_by": "workload"},
        )
        if self.config.scoring_model is not None:
            await self._ok(
                "PUT",
                f"{e.scoring}/v1/scoring/model",
                "setup.scoring_model",
                headers=self.admin,
                json=dict(self.config.scoring_model),
            )
        self.script.counts["setup.done"] += 1

    # -- capture ------------------------------------------------------------------------

    async def capture(self) -> None:
        """Send the whole population: people in order (paced by ``rate``), on-time scan
        batches as they fill, bad input sprinkled in, then late and replayed batches and
        the follow-ups (returning visitors, typo duplicates)."""
        plan, cfg = self.plan, self.config
        started = time.monotonic()
        tasks: list[asyncio.Task[None]] = []
        batch_of: dict[int, ScanBatch] = {}
        for b in plan.scan_batches:
            batch_of[b.people[-1]] = b  # a batch is uploaded once its last scan happened
        bad_every = (len(plan.people) / plan.bad_requests) if plan.bad_requests else 0.0
        bad_sent = 0
        for i, person in enumerate(plan.people):
            if cfg.rate:
                wait = started + i / cfg.rate - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
            if person.capture != "scan":
                tasks.append(asyncio.create_task(self._person(person)))
            batch = batch_of.get(person.key)
            if batch is not None and not batch.late:
                tasks.append(asyncio.create_task(self._scan_batch(batch)))
            while (
                bad_every and bad_sent < plan.bad_requests and i + 1 >= (bad_sent + 1) * bad_every
            ):
                tasks.append(asyncio.create_task(self._bad_request(bad_sent)))
                bad_sent += 1
            # keep the task list from growing without bound on big runs
            if len(tasks) > 4 * cfg.concurrency:
                done = [t for t in tasks if t.done()]
                for t in done:
                    tasks.remove(t)
                    t.result()
        await _gather(tasks)
        late = [b for b in plan.scan_batches if b.late]
        await _gather([asyncio.create_task(self._scan_batch(b)) for b in late])
        replays = [b for b in plan.scan_batches if b.replay]
        await _gather([asyncio.create_task(self._scan_batch(b, replay=True)) for b in replays])
        follow = [p for p in plan.people if p.returning or p.typo_duplicate]
        await _gather([asyncio.create_task(self._follow_up(p)) for p in follow])
        self.script.counts["capture.seconds"] = int(time.monotonic() - started)

    async def _person(self, p: Person) -> None:
        e = self.endpoints
        key_header = {"X-Api-Key": e.api_key}
        if p.anonymous_id:
            items = [
                {
                    "activity_id": f"{self.config.id_prefix}anon-{p.key}-{n}",
                    "type": "page_view",
                    "occurred_at": _now(),
                    "anonymous_id": p.anonymous_id,
                    "url": f"https://www.leadflow-demo.com/features/{n}",
                }
                for n in range(p.anonymous_views)
            ]
            await self._activities(items)
        if p.activities:
            # Before the inquiry, keyed by email: intake holds them and joins them to the
            # lead when it is captured, so scoring sees the whole story at once.
            await self._activities(
                [
                    {
                        "activity_id": f"{self.config.id_prefix}act-{p.key}-{n}",
                        "occurred_at": _now(),
                        "email": p.email,
                        **a,
                    }
                    for n, a in enumerate(p.activities)
                ]
            )
        if p.capture == "api":
            body: dict[str, Any] = {
                "contact": p.contact(),
                "source": {
                    "channel": p.channel,
                    **p.utm,
                    **({"campaign": p.campaign} if p.campaign else {}),
                },
                "answers": dict(p.answers),
                "consent": {"marketing_opt_in": p.marketing_opt_in, "source": "website"},
                "external_id": f"{self.config.id_prefix}ext-{p.key}",
            }
            if p.company_size:
                body["answers"]["company_size"] = p.company_size
            if p.anonymous_id:
                body["anonymous_id"] = p.anonymous_id
            r = await self.request(
                "POST",
                f"{e.intake}/v1/inquiries",
                what="inquiry",
                headers={**key_header, "Idempotency-Key": f"{self.config.id_prefix}inq-{p.key}"},
                json=body,
            )
        else:
            form: dict[str, str] = {k: v for k, v in p.contact().items() if v}
            form.update(p.utm)
            form.update({k: v for k, v in p.answers.items()})
            if p.company_size:
                form["company_size"] = p.company_size
            form["marketing_opt_in"] = "yes" if p.marketing_opt_in else "no"
            if p.anonymous_id:
                form["anonymous_id"] = p.anonymous_id
            r = await self.request(
                "POST",
                f"{e.intake}/v1/forms/{self._form_key}",
                what="form",
                headers={"Origin": FORM_ORIGIN, "Accept": "application/json"},
                data=form,
            )
        what = "inquiry" if p.capture == "api" else "form"
        if r.status_code in (200, 201, 202):
            self.script.counts[f"{what}.accepted"] += 1
            self.script.note_lead(p.key, r.json()["lead_id"])
        else:
            self.script.counts[f"{what}.refused"] += 1
            self.script.errors.append(f"{what} {p.key}: {r.status_code} {r.text[:200]}")

    async def _activities(self, items: list[dict[str, Any]]) -> None:
        r = await self.request(
            "POST",
            f"{self.endpoints.intake}/v1/activities",
            what="activities",
            headers={"X-Api-Key": self.endpoints.api_key},
            json={"items": items},
        )
        if r.status_code != 200:
            self.script.counts["activity.refused_batch"] += 1
            self.script.errors.append(f"activities: {r.status_code} {r.text[:200]}")
            return
        for status in ("accepted", "anonymous", "duplicate", "rejected"):
            self.script.counts[f"activity.{status}"] += int(r.json().get(status, 0))

    async def _scan_batch(self, batch: ScanBatch, *, replay: bool = False) -> None:
        items: list[dict[str, Any]] = []
        activities: list[dict[str, Any]] = []
        for key in batch.people:
            p = self.plan.person(key)
            items.append(
                {
                    "scan_id": f"{self.config.id_prefix}scan-{key}",
                    "scanned_at": _now(),
                    "badge": p.contact(),
                    "rating": p.rating,
                    "answers": {
                        **p.answers,
                        **({"company_size": p.company_size} if p.company_size else {}),
                    },
                }
            )
            if not replay:
                activities += [
                    {
                        "activity_id": f"{self.config.id_prefix}act-{p.key}-{n}",
                        "occurred_at": _now(),
                        "email": p.email,
                        **a,
                    }
                    for n, a in enumerate(p.activities)
                ]
        if activities:
            await self._activities(activities)  # the visitors' web activity, one request
        for n in range(batch.bad_items):
            items.append(
                {
                    "scan_id": f"{self.config.id_prefix}bad-{batch.people[0]}-{n}",
                    "scanned_at": "yesterday",
                    "badge": {"email": "not an email"},
                }
            )
        r = await self.request(
            "POST",
            f"{self.endpoints.intake}/v1/scans",
            what="scans",
            headers={"X-Api-Key": self._device_keys[batch.device]},
            json={"event_id": batch.event_id, "campaign": batch.campaign, "items": items},
        )
        kind = "scan_replay" if replay else "scan"
        if r.status_code != 200:
            self.script.counts[f"{kind}.refused_batch"] += 1
            self.script.errors.append(f"scans: {r.status_code} {r.text[:300]}")
            return
        body = r.json()
        for status in ("accepted", "duplicate", "rejected"):
            self.script.counts[f"{kind}.{status}"] += int(body.get(status, 0))
        self.script.counts[f"{kind}.batches"] += 1
        if batch.late and not replay:
            self.script.counts["scan.late_batches"] += 1
        for item in body["items"]:
            if item["status"] == "accepted":
                key = int(item["scan_id"].rsplit("-", 1)[1])
                self.script.note_lead(key, item["lead_id"])

    async def _bad_request(self, n: int) -> None:
        """Invalid input of a few kinds, each of which intake must refuse with a problem."""
        e = self.endpoints
        kind = n % 4
        if kind == 0:
            r = await self.request(
                "POST",
                f"{e.intake}/v1/inquiries",
                what="bad",
                headers={"X-Api-Key": e.api_key},
                json={"contact": {"email": f"broken-{n}@"}},
            )
        elif kind == 1:
            r = await self.request(
                "POST",
                f"{e.intake}/v1/inquiries",
                what="bad",
                headers={"X-Api-Key": e.api_key},
                json={"contact": {"email": f"ok{n}@x.com"}, "surprise": 1},
            )
        elif kind == 2:
            r = await self.request(
                "POST",
                f"{e.intake}/v1/forms/{self._form_key}",
                what="bad",
                headers={"Origin": FORM_ORIGIN, "Accept": "application/json"},
                data={"first_name": "No", "last_name": "Email"},
            )
        else:
            r = await self.request(
                "POST",
                f"{e.intake}/v1/activities",
                what="bad",
                headers={"X-Api-Key": e.api_key},
                json={
                    "items": [{"type": "teleport", "occurred_at": _now(), "email": f"bad{n}@x.com"}]
                },
            )
            refused = r.status_code == 200 and r.json().get("rejected") == 1
            self.script.counts["bad.sent"] += 1
            self.script.counts["bad.refused" if refused else "bad.accepted"] += 1
            return
        self.script.counts["bad.sent"] += 1
        ok = 400 <= r.status_code < 500 and r.headers.get("content-type", "").startswith(
            "application/problem+json"
        )
        self.script.counts["bad.refused" if ok else "bad.accepted"] += 1

    async def _follow_up(self, p: Person) -> None:
        e = self.endpoints
        email = typo(p.email) if p.typo_duplicate else p.email
        body = {
            "contact": p.contact(email),
            "source": {"channel": p.channel, **p.utm},
            "consent": {"marketing_opt_in": p.marketing_opt_in, "source": "website"},
            "external_id": f"{self.config.id_prefix}ext-{p.key}-again",
        }
        r = await self.request(
            "POST",
            f"{e.intake}/v1/inquiries",
            what="follow_up",
            headers={"X-Api-Key": e.api_key},
            json=body,
        )
        kind = "typo_duplicate" if p.typo_duplicate else "returning"
        if r.status_code == 202:
            answer = r.json()
            self.script.counts[f"{kind}.accepted"] += 1
            self.script.counts[
                f"{kind}.matched" if answer.get("matched") else f"{kind}.new_lead"
            ] += 1
        else:
            self.script.counts[f"{kind}.refused"] += 1
            self.script.errors.append(f"{kind} {p.key}: {r.status_code} {r.text[:200]}")

    # -- reps ---------------------------------------------------------------------------

    def _planned_fate(self, lead_id: str, cycle: int) -> Fate | None:
        key = self.script.person_of_lead.get(lead_id)
        if key is not None and cycle == 0:
            return self.plan.person(key).fate
        # A lead the plan did not expect here (or back a second time): decide from its id.
        rng = random.Random(f"{self.config.seed}:{lead_id}:{cycle}")
        return decide_fate(rng, self.config.reps)

    @contextlib.asynccontextmanager
    async def reps_working(self) -> AsyncIterator[None]:
        """Simulated reps poll their queues and work leads while the block runs."""
        stop = asyncio.Event()
        working: set[str] = set()
        cycles: Counter[str] = Counter()
        done_at: dict[str, float] = {}
        limit = asyncio.Semaphore(self.config.reps.max_concurrent_leads)
        lead_tasks: set[asyncio.Task[None]] = set()

        async def rep_loop(rep_id: str) -> None:
            while not stop.is_set():
                asked = time.monotonic()
                try:
                    r = await self.request(
                        "GET",
                        f"{self.endpoints.routing}/v1/reps/{rep_id}/queue",
                        what="rep.poll",
                        headers=self.as_rep(rep_id),
                    )
                    leads = r.json().get("leads", []) if r.status_code == 200 else []
                except httpx.HTTPError:
                    leads = []
                for item in leads:
                    lead_id = str(item["lead_id"])
                    if lead_id in working:
                        continue
                    if lead_id in done_at:
                        # Our last action may not be in a snapshot taken before it landed.
                        if asked <= done_at[lead_id] or item["stage"] != "mql":
                            continue
                        cycles[lead_id] += 1
                    working.add(lead_id)
                    task = asyncio.create_task(
                        work(rep_id, lead_id, item["stage"], cycles[lead_id])
                    )
                    lead_tasks.add(task)
                    task.add_done_callback(lead_tasks.discard)
                await wait_event(stop, self.config.reps.poll_interval)

        async def work(rep_id: str, lead_id: str, stage: str, cycle: int) -> None:
            try:
                async with limit:
                    await self._work_lead(rep_id, lead_id, stage, cycle)
            except Exception as exc:  # a rep's mistake must not stop the other reps
                self.script.errors.append(f"rep {rep_id} lead {lead_id}: {exc!r}")
            finally:
                done_at[lead_id] = time.monotonic()
                working.discard(lead_id)

        loops = [asyncio.create_task(rep_loop(r)) for r in self.rep_ids]
        try:
            yield
        finally:
            stop.set()
            try:
                await _gather(loops)
            finally:  # a rep loop's error must not leave lead tasks using a closed client
                for t in list(lead_tasks):
                    t.cancel()
                await asyncio.gather(*lead_tasks, return_exceptions=True)

    async def _work_lead(self, rep_id: str, lead_id: str, stage: str, cycle: int) -> None:
        fate = self.fate_for(lead_id, cycle)
        if fate is None:
            return
        start = {"mql": 0, "sal": 1, "sql": 3, "opportunity": 4}.get(stage, 0)
        steps = fate.steps if fate.steps[0] == "reject" and start == 0 else fate.steps[start:]
        cfg = self.config.reps
        rng = random.Random(f"{self.config.seed}:delay:{lead_id}:{cycle}")
        for n, action in enumerate(steps):
            low, high = cfg.accept_delay if n == 0 else cfg.step_delay
            await asyncio.sleep(rng.uniform(low, high))
            body: dict[str, Any] = {"rep_id": rep_id}
            if action in ("reject", "recycle", "lost"):
                body["reason_code"] = fate.reason_code or "other"
            if action in ("opportunity", "won"):
                body["amount"] = str(fate.amount)
            if action == "opportunity":
                body["currency"] = "USD"
            if action == "contacted":
                body["channel"] = "phone"
            r = await self.request(
                "POST",
                f"{self.endpoints.routing}/v1/leads/{lead_id}/{action}",
                what=f"rep.{action}",
                headers=self.as_rep(rep_id),
                json=body,
            )
            self.script.actions.append((lead_id, action, rep_id, r.status_code))
            if r.status_code >= 400:
                self.script.counts[f"rep.{action}.refused_{r.status_code}"] += 1
                self.script.errors.append(f"rep {action} {lead_id}: {r.status_code} {r.text[:200]}")
                return
            self.script.counts[f"rep.{action}"] += 1
        self.script.finished[lead_id] = fate.outcome if cycle == 0 else f"{fate.outcome}@{cycle}"

    async def wait_settled(self, timeout: float = 120.0, interval: float = 0.25) -> bool:
        """Poll (with a deadline) until every lead the plan qualifies finished its fate."""
        expected = {p.key for p in self.plan.people if p.fate is not None}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            finished = {self.script.person_of_lead.get(lead) for lead in self.script.finished}
            if expected <= finished:
                return True
            await asyncio.sleep(interval)
        return False

    async def run(self, *, settle_timeout: float = 180.0) -> Script:
        """Setup, capture with reps working, and wait until the qualified leads settled."""
        async with self:
            await self.setup()
            async with self.reps_working():
                await self.capture()
                settled = await self.wait_settled(settle_timeout)
                self.script.counts["settled"] = int(settled)
        return self.script


async def _gather(tasks: Sequence[Awaitable[None]]) -> None:
    results = await asyncio.gather(*tasks, return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        raise errors[0]


def new_run_prefix() -> str:
    """A short unique prefix so repeated runs against one database do not collide."""
    return uuid.uuid4().hex[:6] + "-"
