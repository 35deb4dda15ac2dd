"""One real broker for each test process (`make test` runs two, with pytest-xdist).

Which broker, in order: ``KAFKA_BOOTSTRAP_SERVERS`` (an external cluster);
``INTERCEPTOR_TEST_BROKER=kafka-container`` (testcontainers' Apache Kafka, skipped
cleanly where no Docker engine runs); otherwise the embedded Tansu broker.
Every test gets its own topic prefix and consumer group, so tests never share state.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from pipeline.broker import EmbeddedBroker, create_topics
from pipeline.keys import generate_key
from pipeline.settings import Settings
from pipeline.topics import catalogue


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield external
        return
    if os.environ.get("INTERCEPTOR_TEST_BROKER") == "kafka-container":
        try:
            from testcontainers.kafka import KafkaContainer

            container = KafkaContainer()
            container.start()
        except Exception as error:  # no Docker engine: nothing to test against
            pytest.skip(f"testcontainers' Kafka is unavailable here: {error}")
        try:
            yield container.get_bootstrap_server()
        finally:
            container.stop()
        return
    log = tmp_path_factory.mktemp("broker") / "tansu.log"
    with EmbeddedBroker(log_path=log) as broker:
        yield broker.bootstrap


@pytest.fixture(scope="session")
def signing_key_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real war-room key, as `interceptor keys` makes it: workers under test sign as in production."""
    directory = tmp_path_factory.mktemp("keys")
    generate_key(directory)
    return directory


@pytest.fixture
async def settings(kafka_bootstrap: str, tmp_path: Path, signing_key_dir: Path) -> AsyncIterator[Settings]:
    """Settings for one test: its own topics and consumer group on the session's broker."""
    tag = uuid.uuid4().hex[:10]
    configured = Settings(
        bootstrap_servers=kafka_bootstrap,
        topic_prefix=f"t{tag}.",
        consumer_group=f"g{tag}",
        data_dir=tmp_path,
        housekeeping_interval_s=1.0,
        signing_key_dir=signing_key_dir,
        pseudonym_key="integration-test-pseudonym-key",
    )
    await create_topics(kafka_bootstrap, catalogue(0), configured.topic_prefix)
    yield configured
