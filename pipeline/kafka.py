"""Every Kafka client the project makes, made in one place, so TLS and SASL reach all of them.

A production cluster asks for TLS and SASL; the embedded broker for neither. The worker,
its recovery readers, the changelog, topic creation, the demo, the simulator and the bench
all build their consumers, producers and admin clients from a ``KafkaConnection``, which
carries the bootstrap address and the security settings (``pipeline/settings.py``). A test
checks that nothing else constructs a client directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.helpers import create_ssl_context

if TYPE_CHECKING:
    from pipeline.settings import Settings


@dataclass(frozen=True)
class KafkaConnection:
    """Where the cluster is and how to reach it."""

    bootstrap: str
    security: Mapping[str, Any] = field(default_factory=dict, repr=False)  # aiokafka's security_protocol, ssl_, sasl_

    @classmethod
    def of(cls, settings: Settings, bootstrap: str | None = None) -> KafkaConnection:
        """The connection the settings describe; ``bootstrap`` overrides theirs (the embedded broker's address)."""
        address = bootstrap or settings.bootstrap_servers
        if not address:
            raise ValueError("no Kafka bootstrap address: set KAFKA_BOOTSTRAP_SERVERS or pass --bootstrap")
        return cls(address, client_security(settings))

    def consumer(self, *topics: str, **options: Any) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(*topics, bootstrap_servers=self.bootstrap, **self.security, **options)

    def group_consumer(self, settings: Settings, group_id: str, **options: Any) -> AIOKafkaConsumer:
        """A batch loop's consumer in ``group_id``: it commits itself, starts from the earliest offset, and takes
        the settings' group timeouts and fetch wait, with fetches large enough for a whole batch."""
        return self.consumer(
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=settings.session_timeout_ms,
            heartbeat_interval_ms=settings.heartbeat_interval_ms,
            max_partition_fetch_bytes=4 << 20,
            fetch_max_bytes=32 << 20,
            fetch_max_wait_ms=settings.fetch_max_wait_ms,
            **options,
        )

    def producer(self, **options: Any) -> AIOKafkaProducer:
        return AIOKafkaProducer(bootstrap_servers=self.bootstrap, **self.security, **options)

    def admin(self, **options: Any) -> AIOKafkaAdminClient:
        return AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, **self.security, **options)


def connect(kafka: KafkaConnection | str) -> KafkaConnection:
    """A bare address means the plaintext embedded broker (tests, the demo's own broker)."""
    return kafka if isinstance(kafka, KafkaConnection) else KafkaConnection(kafka)


def client_security(settings: Settings) -> dict[str, Any]:
    """aiokafka's keyword arguments for the settings' ``kafka_security_protocol``; none for plaintext."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return {}
    options: dict[str, Any] = {"security_protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        files = (settings.kafka_ssl_cafile, settings.kafka_ssl_certfile, settings.kafka_ssl_keyfile)
        cafile, certfile, keyfile = (None if path is None else str(path) for path in files)
        password = settings.kafka_ssl_key_password
        options["ssl_context"] = create_ssl_context(
            cafile=cafile,
            certfile=certfile,
            keyfile=keyfile,
            password=None if password is None else password.get_secret_value(),
        )
    if protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
        secret = settings.kafka_sasl_password
        options.update(
            sasl_mechanism=settings.kafka_sasl_mechanism,
            sasl_plain_username=settings.kafka_sasl_username,
            sasl_plain_password=None if secret is None else secret.get_secret_value(),
        )
    return options
