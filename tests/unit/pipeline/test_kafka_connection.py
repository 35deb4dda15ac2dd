"""TLS and SASL settings reach every Kafka client, and nothing builds a client around them."""

from __future__ import annotations

import ast
import ssl
from pathlib import Path

import pytest
from pydantic import ValidationError

from pipeline.kafka import KafkaConnection
from pipeline.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
CLIENTS = {"AIOKafkaConsumer", "AIOKafkaProducer", "AIOKafkaAdminClient"}
SASL_SSL = Settings(
    bootstrap_servers="kafka-1:9094",
    kafka_security_protocol="SASL_SSL",
    kafka_sasl_mechanism="SCRAM-SHA-512",
    kafka_sasl_username="interceptor",
    kafka_sasl_password="s3cret",
)


async def test_sasl_over_tls_reaches_consumers_producers_and_admin_clients() -> None:
    kafka = KafkaConnection.of(SASL_SSL)  # building a client connects nowhere: it only needs an event loop
    consumer, producer, admin = kafka.consumer("bank-transactions"), kafka.producer(), kafka.admin()
    try:
        clients = [consumer._client, producer.client, admin._client]
    finally:
        await consumer.stop()
        await producer.stop()
        await admin.close()

    for client in clients:
        assert client._bootstrap_servers == "kafka-1:9094"
        assert client._security_protocol == "SASL_SSL"
        assert (client._sasl_mechanism, client._sasl_plain_username) == ("SCRAM-SHA-512", "interceptor")
        assert client._sasl_plain_password == "s3cret"
        assert isinstance(client._ssl_context, ssl.SSLContext)
        assert client._ssl_context.verify_mode == ssl.CERT_REQUIRED  # the broker's certificate is checked


async def test_the_embedded_broker_gets_plaintext_and_the_command_line_address_wins() -> None:
    kafka = KafkaConnection.of(SASL_SSL.with_overrides(kafka_security_protocol="PLAINTEXT"), "127.0.0.1:9092")

    assert kafka.security == {}
    consumer = kafka.consumer()
    await consumer.stop()
    client = consumer._client
    assert (client._bootstrap_servers, client._security_protocol) == ("127.0.0.1:9092", "PLAINTEXT")


def test_settings_refuse_half_a_configuration_and_never_show_the_password() -> None:
    with pytest.raises(ValidationError, match="kafka_sasl_username and kafka_sasl_password"):
        Settings(kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_username="interceptor")
    with pytest.raises(ValidationError, match="go together"):
        Settings(kafka_security_protocol="SSL", kafka_ssl_certfile=Path("client.pem"))
    with pytest.raises(ValueError, match="KAFKA_BOOTSTRAP_SERVERS"):
        KafkaConnection.of(Settings())

    assert "s3cret" not in repr(SASL_SSL) and "s3cret" not in repr(KafkaConnection.of(SASL_SSL))


def test_only_pipeline_kafka_constructs_a_kafka_client() -> None:
    """A client built anywhere else would connect without the cluster's TLS and SASL settings."""
    offenders = []
    for package in ("pipeline", "connectors", "processors", "schemas"):
        for path in (ROOT / package).rglob("*.py"):
            if path == ROOT / "pipeline" / "kafka.py":
                continue
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) in CLIENTS:
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []
