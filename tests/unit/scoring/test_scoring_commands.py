"""Scoring's API commands decided without a database: nurture track admin and the
predictive model's promotion, with plain values (the built-in tracks as shipped)."""

from __future__ import annotations

import pytest

from leadflow.scoring.builtin import default_tracks_data
from leadflow.scoring.commands import (
    CommandRefused,
    Incumbent,
    PutTrack,
    RetireTrack,
    decide_promotion,
    decide_put_track,
    decide_retire_track,
)


def test_a_track_is_stored_under_the_url_s_id_without_the_body_s_version() -> None:
    body = default_tracks_data()[0] | {"version": 99}
    track = decide_put_track(PutTrack(body["id"], body))
    assert (track.id, track.version) == (body["id"], 1)
    body.pop("id")
    assert decide_put_track(PutTrack("renamed", body)).id == "renamed"


def test_a_track_naming_another_id_or_a_broken_step_is_refused_naming_the_field() -> None:
    body = default_tracks_data()[0]
    with pytest.raises(CommandRefused) as other:
        decide_put_track(PutTrack("not-" + body["id"], body))
    assert (other.value.status, other.value.errors) == (
        422,
        [{"field": "id", "message": "must match the URL"}],
    )
    broken = body | {"steps": [{"content_id": "x", "wait_hours": -1}]}
    with pytest.raises(CommandRefused) as bad:
        decide_put_track(PutTrack(body["id"], broken))
    assert bad.value.status == 422
    assert [e["field"] for e in bad.value.errors] == ["steps[0].wait_hours"]
    problem = bad.value.problem()
    assert (problem.status, problem.title) == (422, "Invalid track")


def test_only_an_active_track_can_be_retired() -> None:
    decide_retire_track(RetireTrack("welcome"), active=True)
    with pytest.raises(CommandRefused) as refused:
        decide_retire_track(RetireTrack("welcome"), active=False)
    assert refused.value.status == 404 and "welcome" in refused.value.detail


def test_a_new_predictive_model_is_promoted_only_if_it_beats_the_one_in_service() -> None:
    first = decide_promotion({"auc": 0.71}, None)
    assert first.promoted and first.metrics["incumbent"] is None
    worse = decide_promotion({"auc": 0.70}, Incumbent(version=1, auc=0.71))
    assert not worse.promoted
    assert worse.metrics["incumbent"] == {"version": 1, "auc_on_this_holdout": 0.71}
    tie = decide_promotion({"auc": 0.71}, Incumbent(version=1, auc=0.71))
    assert not tie.promoted  # strictly better only
    better = decide_promotion({"auc": 0.75}, Incumbent(version=1, auc=0.71))
    assert better.promoted and better.metrics["promoted"] is True
