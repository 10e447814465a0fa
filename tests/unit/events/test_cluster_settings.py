"""The kernel's Kafka cluster settings: topic sizing a service creates with, and the rack."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from leadflow.events.settings import ServiceSettings
from leadflow.events.topics import new_topics


def test_defaults_suit_a_single_local_broker() -> None:
    s = ServiceSettings(_env_file=None)
    assert (s.topic_partitions, s.topic_replication_factor) == (3, 1)
    assert s.topic_min_insync_replicas is None
    assert s.kafka_client_rack == ""


def test_cluster_values_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADFLOW_TOPIC_PARTITIONS", "12")
    monkeypatch.setenv("LEADFLOW_TOPIC_REPLICATION_FACTOR", "3")
    monkeypatch.setenv("LEADFLOW_TOPIC_MIN_INSYNC_REPLICAS", "2")
    monkeypatch.setenv("LEADFLOW_KAFKA_CLIENT_RACK", "eu-west-1a")
    s = ServiceSettings(_env_file=None)
    assert (s.topic_partitions, s.topic_replication_factor) == (12, 3)
    assert s.topic_min_insync_replicas == 2
    assert s.kafka_client_rack == "eu-west-1a"


def test_empty_min_insync_replicas_means_the_brokers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADFLOW_TOPIC_MIN_INSYNC_REPLICAS", "")
    assert ServiceSettings(_env_file=None).topic_min_insync_replicas is None


def test_min_insync_replicas_above_the_replication_factor_is_refused() -> None:
    with pytest.raises(ValidationError, match="exceeds LEADFLOW_TOPIC_REPLICATION_FACTOR"):
        ServiceSettings(topic_replication_factor=1, topic_min_insync_replicas=2)


def test_new_topics_carry_min_insync_replicas_only_when_set() -> None:
    (plain,) = new_topics(["t"], 6, 3, 24)
    (strict,) = new_topics(["t"], 6, 3, 24, min_insync_replicas=2)
    assert "min.insync.replicas" not in plain.topic_configs
    assert strict.topic_configs["min.insync.replicas"] == "2"
    assert (strict.num_partitions, strict.replication_factor) == (6, 3)
