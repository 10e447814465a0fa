"""Configuration shared by every service, read only from environment variables.

| variable | default | meaning |
|---|---|---|
| `DATABASE_URL` | `postgresql://postgres@127.0.0.1:5432/leadflow` | Postgres the service keeps its schema in |
| `KAFKA_BOOTSTRAP_SERVERS` | `127.0.0.1:9092` | Kafka brokers |
| `LEADFLOW_DB_SCHEMA` | the service name (`sla` for sla-monitor) | the service's own schema |
| `LEADFLOW_TOPIC_PREFIX` | empty | prefix for every topic (tests, shared brokers) |
| `LEADFLOW_TOPIC_RETENTION_HOURS` | `168` | `retention.ms` of the topics a service or `create-topics` creates: events carry personal fields in clear, so this bounds how long an erased lead's data stays on the broker |
| `LEADFLOW_TOPIC_PARTITIONS` | `3` | partitions of the topics a service creates when they are missing (the `create-topics` job, run first in a deployment, takes `--partitions`): the ceiling on the replicas of a consumer service that do work |
| `LEADFLOW_TOPIC_REPLICATION_FACTOR` | `1` | replication factor of the topics a service creates when missing (a cluster: 3) |
| `LEADFLOW_TOPIC_MIN_INSYNC_REPLICAS` | empty | `min.insync.replicas` of the topics a service or `create-topics` creates (empty: the broker's default); with replication 3, set 2, so an `acks=all` write survives one broker lost and is refused, not silently under-replicated, with two |
| `LEADFLOW_KAFKA_CLIENT_RACK` | empty | the rack (availability zone) this process runs in, sent as the consumers' `client.rack`: with brokers that set `broker.rack` and `replica.selector.class=org.apache.kafka.common.replica.RackAwareReplicaSelector`, consumers fetch from a replica in their own zone instead of the partition leader (KIP-392) |
| `LEADFLOW_ADMIN_TOKEN` | `change-me` | the bootstrap admin token: an automation credential that acts as the `admin` role on every service (people sign in at the console instead) |
| `LEADFLOW_AUTH_ISSUER` | `http://127.0.0.1:8000` | the issuer whose tokens every service accepts (`iss`): the local console by default, or an existing OIDC provider's issuer URL |
| `LEADFLOW_AUTH_JWKS_URL` | empty | where the issuer's signing keys are (empty: the `jwks_uri` of `<issuer>/.well-known/openid-configuration`) |
| `LEADFLOW_AUTH_AUDIENCE` | `leadflow` | the audience (`aud`) a token must carry (empty: not checked) |
| `LEADFLOW_AUTH_ROLES_CLAIM` | `roles` | the claim (a dotted path, e.g. `realm_access.roles` for Keycloak, `groups` for Okta) holding the Leadflow roles and the `personal_data` grant |
| `LEADFLOW_AUTH_REP_CLAIM` | `rep_id` | the claim binding a `rep` to their routing rep id |
| `LEADFLOW_AUTH_ALGORITHMS` | `EdDSA,RS256` | accepted signature algorithms (asymmetric only; others are ignored) |
| `LEADFLOW_AUTH_JWKS_CACHE_SECONDS` | `3600` | how long fetched signing keys are kept (a token with an unknown key id refreshes them sooner) |
| `LEADFLOW_HOST` / `LEADFLOW_PORT` | `127.0.0.1` / per service | where the HTTP server listens |
| `LEADFLOW_MAX_BODY_BYTES` | `1048576` | request bodies above this get 413 (imports have their own) |
| `LEADFLOW_MAX_HEADER_BYTES` | `16384` | a request line plus headers above this gets 431 |
| `LEADFLOW_CONSUMER_BATCH_SIZE` | `500` | records per consumer batch (one transaction) |
| `LEADFLOW_CONSUMER_COMMIT_INTERVAL_SECONDS` | `0.5` | offsets of applied batches are committed to Kafka at most this often, coalesced (the inbox makes a redelivery after a crash harmless) |
| `LEADFLOW_CONSUMER_FETCH_MAX_WAIT_MS` | `100` | the broker answers a consumer's fetch after at most this long... |
| `LEADFLOW_CONSUMER_FETCH_MIN_BYTES` | `1` | ...or as soon as this much is there (1: at once, for the events that move a lead along) |
| `LEADFLOW_FEEDBACK_FETCH_MAX_WAIT_MS` | `250` | the same two for the consumer of a service's feedback topics (scoring's `leadflow.routing`, routing's `leadflow.sla`): they wait... |
| `LEADFLOW_FEEDBACK_FETCH_MIN_BYTES` | `1048576` | ...for a batch, so feedback costs one transaction per batch instead of one per event and never delays a lead's next step |
| `LEADFLOW_MAX_ATTEMPTS` | `5` | attempts before a record is dead-lettered |
| `LEADFLOW_RUN_CONSUMERS` | `true` | run consumers, outbox relay and timers in this process |
| `LEADFLOW_LOG_LEVEL` | `INFO` | log level |
| `LEADFLOW_LOG_JSON` | `true` | JSON logs (false: human-readable) |
| `LEADFLOW_SHUTDOWN_GRACE_SECONDS` | `20` | time to finish in-flight work on SIGTERM |
| `LEADFLOW_HTTP_KEEP_ALIVE_SECONDS` | `75` | idle keep-alive connections are closed after this (above any load balancer's idle timeout) |
| `LEADFLOW_DB_POOL_SIZE` | `10` | database connections per process (up to twice as many under load) |
| `LEADFLOW_DB_RANDOM_PAGE_COST` | `1.1` | the planner's `random_page_cost` in the service's sessions (empty: the server's): the hot statements fetch a few rows by key through array parameters, and at the server default of 4 their cached generic plans scan whole small-to-middling tables instead of probing the index |
| `LEADFLOW_TIMER_POLL_SECONDS` | `0.5` | how often due timers are looked for |
| `LEADFLOW_OUTBOX_POLL_SECONDS` | `1.0` | outbox polling fallback when nothing wakes the relay (its own process after a commit, or a NOTIFY from another) |
| `LEADFLOW_MIGRATE_ON_START` | `true` | run the service's Alembic migrations at startup (advisory-locked) |
| `LEADFLOW_GC_YOUNG_THRESHOLD` | `10000` | once started, the process freezes what startup allocated out of the cycle collector's reach and runs a young collection every this many allocations (CPython: 700); 0 leaves the collector as the interpreter set it |
"""

from __future__ import annotations

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Events carry personal fields in clear: how long they may stay on the broker (a week).
DEFAULT_TOPIC_RETENTION_HOURS = 168.0


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LEADFLOW_", extra="ignore", populate_by_name=True)

    service_name: str = "service"
    database_url: str = Field(
        default="postgresql://postgres@127.0.0.1:5432/leadflow",
        validation_alias=AliasChoices("DATABASE_URL", "LEADFLOW_DATABASE_URL", "database_url"),
    )
    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092",
        validation_alias=AliasChoices(
            "KAFKA_BOOTSTRAP_SERVERS", "LEADFLOW_KAFKA_BOOTSTRAP_SERVERS", "kafka_bootstrap_servers"
        ),
    )
    db_schema: str = ""
    topic_prefix: str = ""
    topic_retention_hours: float = Field(default=DEFAULT_TOPIC_RETENTION_HOURS, gt=0)
    topic_partitions: int = Field(default=3, ge=1)
    topic_replication_factor: int = Field(default=1, ge=1)
    topic_min_insync_replicas: int | None = Field(default=None, ge=1)
    kafka_client_rack: str = ""
    admin_token: str = "change-me"
    auth_issuer: str = "http://127.0.0.1:8000"
    auth_jwks_url: str = ""
    auth_audience: str = "leadflow"
    auth_roles_claim: str = "roles"
    auth_rep_claim: str = "rep_id"
    auth_algorithms: str = "EdDSA,RS256"
    auth_jwks_cache_seconds: float = Field(default=3600.0, gt=0)
    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = 1_048_576
    # The request line and headers together; over it a request is answered 431.
    max_header_bytes: int = Field(default=16_384, ge=1024)
    consumer_batch_size: int = 500
    consumer_commit_interval_seconds: float = Field(default=0.5, ge=0)
    consumer_fetch_max_wait_ms: int = Field(default=100, ge=0)
    consumer_fetch_min_bytes: int = Field(default=1, ge=1)
    feedback_fetch_max_wait_ms: int = Field(default=250, ge=0)
    feedback_fetch_min_bytes: int = Field(default=1_048_576, ge=1)
    max_attempts: int = 5
    run_consumers: bool = True
    log_level: str = "INFO"
    log_json: bool = True
    shutdown_grace_seconds: float = 20.0
    # Read by the uvicorn launchers (deploy/docker/serve.py, the devstack). Longer than any
    # proxy's idle timeout, so the server never closes a connection a client is reusing.
    http_keep_alive_seconds: float = 75.0
    db_pool_size: int = 10
    db_random_page_cost: float | None = Field(default=1.1, gt=0)
    timer_poll_seconds: float = 0.5
    outbox_poll_seconds: float = 1.0
    migrate_on_start: bool = True
    gc_young_threshold: int = Field(default=10_000, ge=0)

    @field_validator("db_random_page_cost", "topic_min_insync_replicas", mode="before")
    @classmethod
    def _empty_means_the_servers(cls, value: object) -> object:
        return None if value == "" else value

    @model_validator(mode="after")
    def _min_isr_within_replication(self) -> ServiceSettings:
        # More in-sync replicas required than exist: every acks=all write would be refused.
        isr = self.topic_min_insync_replicas
        if isr is not None and isr > self.topic_replication_factor:
            raise ValueError(
                f"LEADFLOW_TOPIC_MIN_INSYNC_REPLICAS ({isr}) exceeds "
                f"LEADFLOW_TOPIC_REPLICATION_FACTOR ({self.topic_replication_factor})"
            )
        return self

    @property
    def schema_name(self) -> str:
        """The Postgres schema: explicit, or derived from the service name."""
        return self.db_schema or self.service_name.replace("-monitor", "").replace("-", "_")

    @property
    def producer(self) -> str:
        """The producer name in envelopes and topics (``sla`` for sla-monitor)."""
        return self.service_name.replace("-monitor", "")
