"""Which queues are a rep's team's (what the rep's team-queue view lists), decided on plain
roster values."""

from __future__ import annotations

from leadflow.routing.domain import Queue, Rep, Team, team_queue_ids


def test_a_reps_team_queues_are_the_teams_overflow_and_the_queues_naming_it() -> None:
    rep = Rep(id="a", team_id="na")
    teams = [Team(id="na", queue_id="na-overflow"), Team(id="emea", members=["a"])]
    queues = [
        Queue(id="na-overflow"),
        Queue(id="na-events", team_id="na"),
        Queue(id="emea-q", team_id="emea"),  # listed as a member: their team too
        Queue(id="apac-q", team_id="apac"),
        Queue(id="unassigned"),
    ]
    assert team_queue_ids(rep, teams, queues) == ["emea-q", "na-events", "na-overflow"]
    assert team_queue_ids(Rep(id="z"), teams, queues) == []
