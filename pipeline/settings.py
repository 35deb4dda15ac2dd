"""The one settings object: read from the environment, overridden by CLI flags, then frozen."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal, Self

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pipeline.encode import ActionLimits
from pipeline.pseudonyms import Pseudonyms
from pipeline.topics import RELEASE_REQUESTS, TELECOM_EVENTS, TopicSpec, addressee_spec
from processors.lifecycle import SlaPolicy
from processors.money_trail import TraceSettings
from processors.records import partner_id
from processors.telecom import TelecomSettings
from schemas.signing import SigningKeys

# Public development keys: a worker refuses them unless insecure_dev_keys (pipeline/keys.py).
DEVELOPMENT_HMAC_KEY = "interceptor-development-key"
DEVELOPMENT_PSEUDONYM_KEY = "interceptor-development-pseudonym-key"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="INTERCEPTOR_", frozen=True, extra="forbid")

    bootstrap_servers: str | None = Field(
        default=None,
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "INTERCEPTOR_BOOTSTRAP_SERVERS", "bootstrap_servers"),
        description="external Kafka cluster; unset = start the embedded Tansu broker where a command needs one",
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", description="how every Kafka client connects (pipeline/kafka.py); Tansu: PLAINTEXT"
    )
    kafka_ssl_cafile: Path | None = Field(default=None, description="CA bundle to trust; unset: the system's")
    kafka_ssl_certfile: Path | None = Field(default=None, description="client certificate, for mutual TLS")
    kafka_ssl_keyfile: Path | None = Field(default=None, description="the client certificate's private key")
    kafka_ssl_key_password: SecretStr | None = None
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    consumer_group: str = "interceptor"
    topic_prefix: str = Field(
        default="", pattern=r"^[A-Za-z0-9._-]*$", description="prepended to every catalogue topic (tests, tenants)"
    )
    replication_factor: int = Field(
        default=1,
        ge=1,
        description="copies of every topic the pipeline creates, per-addressee ones too; 3 on a production cluster",
    )

    trace_window: timedelta = Field(default=timedelta(hours=72), description="follow money out within this of arrival")
    max_hops: int = Field(default=4, ge=0, le=16)
    history_retention: timedelta = Field(
        default=timedelta(days=7), description="how long the bank feed is kept for reports that arrive late"
    )
    hold_duration: timedelta = Field(
        default=timedelta(days=7), description="holds expire unless renewed (Thailand: 7 days)"
    )
    expiry_grace: timedelta = Field(
        default=timedelta(days=1),
        description="reports and their actions are forgotten this long after their holds expired (late acks)",
    )
    hub_counterparties: int = Field(
        default=50, ge=2, description="an account with this many distinct counterparties around tainted money is a hub"
    )
    hub_accounts: frozenset[str] = Field(
        default=frozenset(),
        description='hubs named up front, as JSON: ["bank:KBANK:0011223344", "crypto:BINANCE:*"] (* = every account)',
    )
    max_message_bytes: int = Field(default=64 * 1024, ge=1024)
    max_trail_steps: int = Field(default=200, ge=1, description="trail steps listed in one action; the rest by digest")
    max_listed_ids: int = Field(default=1000, ge=1, description="report and txn ids listed in one action")
    max_action_bytes: int = Field(default=512 * 1024, ge=16 * 1024, description="no published message is larger")

    telecom_window_back: timedelta = Field(default=timedelta(days=30), description="telecom events before a report")
    telecom_window_forward: timedelta = Field(default=timedelta(hours=24), description="telecom events after a report")
    default_addressee: str = Field(default="war-room", description="who acts when the operator or platform is unknown")
    signing_algorithm: Literal["ed25519", "hmac"] = Field(
        default="ed25519",
        description="ed25519: one war-room key anyone can verify with the public JWKS; hmac: shared keys per addressee",
    )
    signing_key_dir: Path | None = Field(
        default=None, description="ed25519: the directory `interceptor keys DIR` made (jwks.json, current, <kid>.pem)"
    )
    signing_keys: dict[str, SecretStr] = Field(
        default_factory=dict, description='hmac: per-addressee keys, JSON: {"KBANK": "…", "AIS": "…"}'
    )
    default_signing_key: SecretStr = Field(
        default=SecretStr(DEVELOPMENT_HMAC_KEY),
        description="hmac: for addressees without their own key; set a real one outside development",
    )
    insecure_dev_keys: bool = Field(
        default=False,
        description="let a worker use the public development keys (demo, bench, simulate and tests only)",
    )
    institution_keys_file: Path | None = Field(
        default=None,
        description='institutions\' public keys for signed acks, JSON: {"KBANK": {"keys": [<Ed25519 JWK>, …]}, …}',
    )
    pseudonym_key: SecretStr = Field(
        default=SecretStr(DEVELOPMENT_PSEUDONYM_KEY),
        description="the war room's key for pseudonymising other institutions' account numbers in partners' "
        "copies; set a real one outside development, and keep it from partners",
    )
    sla_critical: timedelta = Field(default=timedelta(minutes=5), description="execute within this, priority >= 80")
    sla_high: timedelta = Field(default=timedelta(minutes=15), description="priority 60-79")
    sla_medium: timedelta = Field(default=timedelta(hours=1), description="priority 40-59")
    sla_low: timedelta = Field(default=timedelta(hours=4), description="priority below 40")
    escalation_check_interval_s: float = Field(
        default=1.0, gt=0, description="how often escalations, expired holds and held-back actions are checked"
    )
    release_quiet_period: timedelta = Field(
        default=timedelta(hours=24),
        description="a release request is refused while a report behind the action arrived within this before it",
    )
    release_requesters: frozenset[str] = Field(
        default=frozenset(),
        description='partners with their own release-requests.<partner> topic, as JSON: ["KBANK", "AIS"]; '
        "the war room (default_addressee) always has one",
    )
    max_actions_per_institution: int = Field(
        default=0,
        ge=0,
        description="circuit breaker: action versions one addressee gets per circuit_breaker_window at most; "
        "the rest wait, highest priority first (0: no cap)",
    )
    circuit_breaker_window: timedelta = Field(
        default=timedelta(minutes=1), gt=timedelta(0), description="the window max_actions_per_institution counts in"
    )

    batch_max_records: int = Field(default=20_000, ge=1)
    # 250, not 1,000: at the one-worker maximum rate, p99 report -> first freeze about 130-230 ms against 260-360,
    # for about 9 % of the feed's throughput while the worker is behind it (README, *Speed*).
    urgent_batch_max_records: int = Field(
        default=250,
        ge=0,
        description="a batch carrying reports, telecom events, acks or release requests takes at most this many "
        "bank transactions with it, so their actions do not wait for a long batch of the feed; the feed is traced "
        "this many at a time, and one of them arriving meanwhile ends the batch",
    )
    batch_timeout_ms: int = Field(default=20, ge=0)
    fetch_max_wait_ms: int = Field(default=20, ge=0, description="how long the broker may hold a fetch for more data")
    session_timeout_ms: int = Field(default=6_000, ge=1_000, description="Tansu: a group join takes half of this")
    heartbeat_interval_ms: int = Field(default=1_000, ge=100)
    group_instance_id: str | None = Field(
        default=None,
        description="static group membership (KIP-345): a worker restarted under the same id within the session "
        "timeout gets its partitions back without a rebalance; one id per worker process",
    )
    housekeeping_interval_s: float = Field(default=10.0, gt=0)

    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    data_dir: Path = Path(".interceptor")
    trail_store: Literal["rocksdb", "memory"] = Field(
        default="rocksdb",
        description="rocksdb: bank transfers on local disk with a changelog, restart in seconds; "
        "memory: everything in RAM, rebuilt from the input topics on every start",
    )
    warm_standby: bool = Field(
        default=True,
        description="a worker standing by follows the trail changelog into its own store (Kafka Streams' standby "
        "replica), and with trail_partitions > 0 workers follow the changelogs of trail partitions they do not "
        "own (standby_replicas), so a takeover reads only the changelog's tail; false: it catches up when it takes "
        "over",
    )
    standby_replicas: int = Field(
        default=1,
        ge=0,
        description="with trail_partitions > 0 and warm_standby: how many other workers keep a warm copy of each "
        "trail partition (at most the workers less one), named by the trail role's assignor, which also hands a "
        "partition to the worker whose copy is freshest",
    )
    trail_partitions: int = Field(
        default=0,
        ge=0,
        le=254,
        description="0: one worker traces the whole bank feed, the others stand by; N: the trail runs as N "
        "partitions spread over every worker in the group, each restored from its own changelog "
        "(docs/partitioned-engine.md); a cluster keeps the N it started with",
    )
    embedded_broker_port: int = Field(default=9092, ge=0, le=65535, description="0 = any free port")

    @model_validator(mode="after")
    def _sasl_has_credentials(self) -> Self:
        credentials = self.kafka_sasl_username and self.kafka_sasl_password
        if self.kafka_security_protocol.startswith("SASL") and not credentials:
            raise ValueError(
                f"kafka_security_protocol {self.kafka_security_protocol} needs kafka_sasl_username and "
                "kafka_sasl_password (INTERCEPTOR_KAFKA_SASL_USERNAME, INTERCEPTOR_KAFKA_SASL_PASSWORD)"
            )
        if (self.kafka_ssl_certfile is None) != (self.kafka_ssl_keyfile is None):
            raise ValueError("kafka_ssl_certfile and kafka_ssl_keyfile go together (mutual TLS)")
        return self

    @property
    def trace(self) -> TraceSettings:
        return TraceSettings(
            trace_window_ms=int(self.trace_window.total_seconds() * 1000),
            max_hops=self.max_hops,
            history_retention_ms=int(self.history_retention.total_seconds() * 1000),
            hub_counterparties=self.hub_counterparties,
            hub_accounts=self.hub_accounts,
        )

    def topic(self, spec: TopicSpec) -> str:
        return self.topic_prefix + spec.name

    @property
    def telecom(self) -> TelecomSettings:
        return TelecomSettings(
            window_back_ms=_ms(self.telecom_window_back),
            window_forward_ms=_ms(self.telecom_window_forward),
            default_addressee=self.default_addressee,
            operator_memory_ms=TELECOM_EVENTS.retention_ms,  # what a replay after a restart finds
        )

    @property
    def sla(self) -> SlaPolicy:
        return SlaPolicy(
            critical_ms=_ms(self.sla_critical),
            high_ms=_ms(self.sla_high),
            medium_ms=_ms(self.sla_medium),
            low_ms=_ms(self.sla_low),
        )

    @property
    def signing(self) -> SigningKeys:
        return SigningKeys(
            keys={name: key.get_secret_value().encode() for name, key in self.signing_keys.items()},
            default=self.default_signing_key.get_secret_value().encode(),
        )

    @property
    def pseudonyms(self) -> Pseudonyms:
        return Pseudonyms(self.pseudonym_key.get_secret_value().encode())

    @property
    def action_limits(self) -> ActionLimits:
        return ActionLimits(
            max_trail_steps=self.max_trail_steps,
            max_listed_ids=self.max_listed_ids,
            max_action_bytes=self.max_action_bytes,
        )

    @property
    def release_request_topics(self) -> dict[str, str]:
        """Each requester's own release-requests topic, by the partner id a request on it is authenticated as."""
        named = (partner_id(name) for name in (*self.release_requesters, self.default_addressee))
        requesters = sorted({r for r in named if r is not None})  # a name with no letter or digit has no topic
        return {r: self.topic(addressee_spec(RELEASE_REQUESTS, r)) for r in requesters}

    @property
    def hold_duration_ms(self) -> int:
        return int(self.hold_duration.total_seconds() * 1000)

    @property
    def expiry_grace_ms(self) -> int:
        return _ms(self.expiry_grace)

    @property
    def report_retention_ms(self) -> int:
        """How long a report stays in force after its last revision arrived: its holds, then the grace."""
        return self.hold_duration_ms + self.expiry_grace_ms

    def with_overrides(self, **overrides: object) -> Settings:
        """CLI flags win over the environment; flags left unset (None) do not override."""
        given = {key: value for key, value in overrides.items() if value is not None}
        return type(self).model_validate({**self.model_dump(), **given})


def _ms(duration: timedelta) -> int:
    return int(duration.total_seconds() * 1000)
