"""Account scores (issue 30): the roll-up over a scripted buying group, exact figures."""

from __future__ import annotations

from leadflow.scoring.accounts import PersonScore, account_score, rolled_engagement
from leadflow.scoring.builtin import default_model


def test_engagement_rolls_up_with_diminishing_returns() -> None:
    # 40 + 30/2 + 20/4 + 10/8 (ordered high to low whatever the input order)
    assert rolled_engagement([10.0, 40.0, 20.0, 30.0]) == 61.25
    assert rolled_engagement([5.0] * 5) == 9.69  # five light readers never make a hot account
    assert rolled_engagement([90.0, 90.0, 90.0]) == 100.0  # capped
    assert rolled_engagement([]) == 0.0


def test_a_buying_group_of_four_is_a_marketing_qualified_account() -> None:
    group = [
        PersonScore("cfo", fit=84.0, engagement=40.0),
        PersonScore("manager", fit=66.0, engagement=30.0),
        PersonScore("engineer", fit=41.0, engagement=20.0),
        PersonScore("agent", fit=20.0, engagement=10.0),
    ]
    score = account_score(group, default_model())
    assert (score.fit, score.engagement, score.grade) == (84.0, 61.25, "A")
    assert (score.engagement_level, score.matrix_cell) == (1, "A1")
    assert score.people == 4 and score.engaged_people == 4
    assert score.qualified and score.reason == "matrix cell A1 qualifies, 4 engaged people"


def test_one_engaged_person_is_an_mql_not_an_mqa() -> None:
    score = account_score(
        [PersonScore("vp", 95.0, 70.0), PersonScore("silent", 60.0, 0.0)], default_model()
    )
    assert score.matrix_cell == "A1" and not score.qualified
    assert score.reason == "1 engaged people, an MQA needs 2"


def test_a_low_fit_account_is_below_the_bar_and_disqualified_people_do_not_count() -> None:
    model = default_model()
    low = account_score([PersonScore("a", 30.0, 50.0), PersonScore("b", 20.0, 40.0)], model)
    assert low.matrix_cell == "C1" and not low.qualified
    assert low.reason == "matrix cell C1 is below the MQL bar"
    with_student = account_score(
        [PersonScore("a", 30.0, 50.0), PersonScore("student", 95.0, 80.0, disqualified=True)],
        model,
    )
    assert (with_student.fit, with_student.engagement) == (30.0, 50.0)
