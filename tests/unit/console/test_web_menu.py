"""The console's pure page rules: menus from the permission table, actions per stage, the
JSON a hand-off form becomes, and how an SLA deadline reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from leadflow.console.web import menu
from leadflow.events.access import Principal, Role

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def person(*roles: Role, rep_id: str | None = None) -> Principal:
    return Principal("u1", "user", frozenset(roles), rep_id=rep_id)


def test_each_role_is_offered_only_the_pages_it_may_use() -> None:
    paths = lambda who: [p.path for p in menu.pages_for(who)]  # noqa: E731
    assert paths(person(Role.REP, rep_id="jane")) == ["/queue", "/api-docs"]
    assert paths(person(Role.REP)) == ["/api-docs"]  # a rep without a rep id owns no queue
    assert paths(person(Role.ANALYST)) == ["/dashboard", "/process", "/sla", "/api-docs"]
    assert paths(person(Role.SALES_MANAGER)) == [
        "/leads",
        "/dashboard",
        "/process",
        "/routing",
        "/sla",
        "/api-docs",
    ]
    assert paths(person(Role.ADMIN)) == [
        "/leads",
        "/dashboard",
        "/process",
        "/scoring",
        "/tracks",
        "/forms",
        "/imports",
        "/costs",
        "/api-keys",
        "/routing",
        "/sla",
        "/users",
        "/api-docs",
    ]
    assert paths(person(Role.MARKETING_OPS)) == [
        "/leads",
        "/dashboard",
        "/process",
        "/scoring",
        "/tracks",
        "/forms",
        "/imports",
        "/costs",
        "/api-docs",
    ]
    assert menu.home_of(person(Role.ANALYST)) == "/dashboard"


def test_the_actions_offered_follow_the_lifecycle() -> None:
    assert menu.actions_for("mql") == ("accept", "reject", "hold")
    assert "won" in menu.actions_for("opportunity") and "won" not in menu.actions_for("sal")
    assert menu.actions_for("won") == () and menu.actions_for(None) == ()


def test_a_form_becomes_routings_json() -> None:
    assert menu.action_body("opportunity", {"amount": " 1200.50 ", "currency": "eur"}) == {
        "amount": "1200.50",
        "currency": "EUR",
    }
    assert menu.action_body("won", {"amount": "900", "currency": ""}) == {"amount": "900"}
    assert menu.action_body("lost", {"reason_code": "price", "note": " too dear "}) == {
        "reason_code": "price",
        "note": "too dear",
    }
    assert menu.action_body("hold", {"reason": "on leave"}) == {"reason": "on leave"}
    assert menu.action_body("accept", {"note": ""}) == {}


def test_a_deadline_counts_down_then_reads_as_breached() -> None:
    assert menu.countdown(NOW + timedelta(minutes=12, seconds=5), NOW) == ("12m 05s left", False)
    assert menu.countdown(NOW + timedelta(hours=3, minutes=7), NOW) == ("3h 07m left", False)
    assert menu.countdown(NOW - timedelta(seconds=190), NOW) == ("breached 3m 10s ago", True)
    assert menu.countdown(NOW + timedelta(days=2, hours=1), NOW) == ("2d 1h left", False)


def test_money_is_summed_per_currency_never_across() -> None:
    from leadflow.console.web.dashboard import money_by_currency

    rows = [
        {"money": [{"currency": "USD", "won_revenue": 1200, "pipeline": 0, "won_deals": 1}]},
        {
            "money": [
                {"currency": "EUR", "won_revenue": 500, "pipeline": 300, "won_deals": 1},
                {"currency": "USD", "won_revenue": 800, "pipeline": 50, "won_deals": 2},
            ]
        },
        {"money": [{"currency": None}]},
    ]
    assert money_by_currency(rows) == [
        {"currency": "EUR", "won_revenue": 500.0, "pipeline": 300.0, "won_deals": 1},
        {"currency": "USD", "won_revenue": 2000.0, "pipeline": 50.0, "won_deals": 3},
    ]


def test_every_dashboard_figure_opens_its_leads_only_for_roles_that_may_read_leads() -> None:
    from urllib.parse import urlencode

    from leadflow.console.web.render import templates

    scope = {"channel": "web form", "from": "2025-03-03"}

    def dashboard(may_list: bool) -> str:
        def leads(**figure: str) -> str:
            return "/leads?" + urlencode(scope | figure) if may_list else ""

        return templates.get_template("dashboard.html").render(
            request=None,
            who=None,
            pages=[],
            role_label="",
            path="/dashboard",
            csrf="x" * 40,
            csrf_field="csrf_token",
            stages=[
                {"stage": "mql", "count": 4, "conversion": 75.0, "next": "sal"},
                {"stage": "sal", "count": 3, "conversion": None, "next": ""},
            ],
            outcomes={"lost": 1, "disqualified": 0},
            peak=4,
            money=[{"currency": "EUR", "won_revenue": 5.0, "pipeline": 2.0, "won_deals": 1}],
            trends=[
                {
                    "week": "2025-03-03",
                    "first": "2025-03-03",
                    "last": "2025-03-09",
                    "inquiry": 2,
                    "mql": 1,
                    "opportunity": 0,
                    "won": 0,
                    "money": [{"currency": "EUR", "won_revenue": 5.0}],
                }
            ],
            trend_peak=2,
            sources=[
                {"source": "ads", "inquiries": 2, "mqls": 1, "sqls": 0, "won": 0, "money": []}
            ],
            campaigns=[],
            stuck={"total": 1, "by_stage": {"inquiry": 1}},
            reps={
                "rows": [
                    {
                        "rep_id": "r1",
                        "team_id": "t1",
                        "assigned": 2,
                        "accepted": 1,
                        "rejected": 1,
                        "recycled": 0,
                        "won": 0,
                        "lost": 0,
                        "acceptance_rate": 0.5,
                    }
                ],
                "queues": [{"queue_id": "inbound", "assigned": 3}],
                "sla_by_policy": [
                    {
                        "policy_id": "p1",
                        "started": 2,
                        "met_on_time": 1,
                        "breached": 1,
                        "late": 1,
                        "compliance": 0.5,
                    }
                ],
            },
            handoffs=("assigned", "accepted"),
            sla_columns=("breached",),
            columns={"inquiries": "inquiry", "mqls": "mql", "sqls": "sql", "won": "won"},
            scope=scope,
            channel="web form",
            leads=leads,
            error="",
        )

    page = dashboard(True)
    for href in (
        "channel=web+form&amp;from=2025-03-03&amp;reached=mql",  # a bar
        "reached=sal",  # its conversion: the leads that went on
        "reached=lost",
        "won_in=EUR",
        "pipeline_in=EUR",
        "from=2025-03-03&amp;reached=inquiry&amp;to=2025-03-09",  # a weekly point
        "channel=ads&amp;from=2025-03-03&amp;reached=mql",  # a channel row's figure
        "stuck=true&amp;stage=inquiry",
        "from=2025-03-03&amp;won_in=EUR&amp;to=2025-03-09",  # a week's revenue
        "handoff=accepted&amp;by_rep=r1",
        "handoff=assigned&amp;by_queue=inbound",
        "sla=breached&amp;policy=p1",
        "sla=met_on_time&amp;policy=p1",  # a compliance percentage: the clocks met on time
    ):
        assert href in page, href
    acceptance = page.split('data-column="acceptance">', 1)[1].split("</td>", 1)[0]
    assert "handoff=accepted&amp;by_rep=r1" in acceptance and "50.0%" in acceptance
    title = page.split("<title>", 1)[1].split("</title>", 1)[0]
    assert "<" not in title and title.startswith("Dashboard"), title
    assert "/leads?" not in dashboard(False)
