"""The publisher creates each per-addressee topic once, with the settings' replication factor."""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from aiokafka.admin import NewTopic

from pipeline import kafka
from pipeline.publisher import Publisher
from pipeline.settings import Settings
from pipeline.topics import FREEZE_ACTIONS, addressee_spec


class RecordingAdmin:
    """Stands in for ``AIOKafkaAdminClient``: keeps what it was asked to create."""

    created: list[NewTopic] = []

    def __init__(self, **_: object) -> None:
        pass

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def list_topics(self) -> list[str]:
        return [topic.name for topic in self.created]

    async def create_topics(self, topics: Iterable[NewTopic]) -> None:
        self.created.extend(topics)


class Producer:
    async def partitions_for(self, topic: str) -> set[int]:
        return {0}


async def test_a_per_addressee_topic_is_created_once_with_the_replication_factor(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(RecordingAdmin, "created", [])
    monkeypatch.setattr(kafka, "AIOKafkaAdminClient", RecordingAdmin)
    settings = Settings(topic_prefix="t.", replication_factor=3)
    publisher = Publisher(settings, "kafka:9092", Producer())  # type: ignore[arg-type]

    for _ in range(2):
        name = await publisher._ensure_routed(addressee_spec(FREEZE_ACTIONS, "KBANK"))
        assert name == "t.freeze-actions.kbank"

    [created] = RecordingAdmin.created
    assert (created.name, created.num_partitions, created.replication_factor) == (name, FREEZE_ACTIONS.partitions, 3)
    assert created.topic_configs == FREEZE_ACTIONS.config(3)
    assert created.topic_configs["min.insync.replicas"] == "2"
