"""The one settings object: read from the environment, overridden by CLI flags, then frozen."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from pipeline.topics import TopicSpec
from processors.money_trail import TraceSettings


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="INTERCEPTOR_", frozen=True, extra="forbid")

    bootstrap_servers: str | None = Field(
        default=None,
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "INTERCEPTOR_BOOTSTRAP_SERVERS", "bootstrap_servers"),
        description="external Kafka cluster; unset = start the embedded Tansu broker where a command needs one",
    )
    consumer_group: str = "interceptor"
    topic_prefix: str = Field(
        default="", pattern=r"^[A-Za-z0-9._-]*$", description="prepended to every catalogue topic (tests, tenants)"
    )

    trace_window: timedelta = Field(default=timedelta(hours=72), description="follow money out within this of arrival")
    max_hops: int = Field(default=4, ge=0, le=16)
    history_retention: timedelta = Field(
        default=timedelta(days=7), description="how long the bank feed is kept for reports that arrive late"
    )
    hold_duration: timedelta = Field(
        default=timedelta(days=7), description="holds expire unless renewed (Thailand: 7 days)"
    )
    max_message_bytes: int = Field(default=64 * 1024, ge=1024)

    batch_max_records: int = Field(default=20_000, ge=1)
    batch_timeout_ms: int = Field(default=20, ge=0)
    fetch_max_wait_ms: int = Field(default=20, ge=0, description="how long the broker may hold a fetch for more data")
    session_timeout_ms: int = Field(default=6_000, ge=1_000, description="Tansu: a group join takes half of this")
    heartbeat_interval_ms: int = Field(default=1_000, ge=100)
    housekeeping_interval_s: float = Field(default=10.0, gt=0)

    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    data_dir: Path = Path(".interceptor")
    embedded_broker_port: int = Field(default=9092, ge=0, le=65535, description="0 = any free port")

    @property
    def trace(self) -> TraceSettings:
        return TraceSettings(
            trace_window_ms=int(self.trace_window.total_seconds() * 1000),
            max_hops=self.max_hops,
            history_retention_ms=int(self.history_retention.total_seconds() * 1000),
        )

    def topic(self, spec: TopicSpec) -> str:
        return self.topic_prefix + spec.name

    @property
    def hold_duration_ms(self) -> int:
        return int(self.hold_duration.total_seconds() * 1000)

    def with_overrides(self, **overrides: object) -> Settings:
        """CLI flags win over the environment; flags left unset (None) do not override."""
        given = {key: value for key, value in overrides.items() if value is not None}
        return type(self).model_validate({**self.model_dump(), **given})
