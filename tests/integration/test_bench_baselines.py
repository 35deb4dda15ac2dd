"""The bench baselines against a real broker: every message is read and the rate is a real number."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from pipeline.bench_baselines import fill_topic, measure_bare_aiokafka, measure_naive_faust

pytestmark = pytest.mark.integration

MESSAGES = 3_000
PARTITIONS = 3


def bank_transactions(count: int) -> Iterator[bytes]:
    for n in range(count):
        yield orjson.dumps(
            {
                "txn_id": f"t{n}",
                "from_account": {"institution": "KBANK", "account": f"{n % 50:010d}", "kind": "bank"},
                "to_account": {"institution": "SCB", "account": f"{n % 70:010d}", "kind": "bank"},
                "amount": f"{100 + n % 900}.00",
                "currency": "THB",
                "executed_at": "2026-11-23T10:00:00+07:00",
            }
        )


@pytest.fixture(scope="module")
def bootstrap(kafka_bootstrap: str) -> str:
    return kafka_bootstrap


@pytest.fixture(scope="module")
async def filled_topic(bootstrap: str) -> AsyncIterator[str]:
    topic = f"bench-baselines-{uuid.uuid4().hex[:8]}"
    assert await fill_topic(bootstrap, topic, bank_transactions(MESSAGES), partitions=PARTITIONS) == MESSAGES
    yield topic


async def test_fill_topic_deals_every_payload_over_the_partitions(bootstrap: str, filled_topic: str) -> None:
    per_partition = await _count_per_partition(bootstrap, filled_topic)

    assert per_partition == {partition: MESSAGES // PARTITIONS for partition in range(PARTITIONS)}


async def test_bare_aiokafka_reads_every_message(bootstrap: str, filled_topic: str) -> None:
    result = await measure_bare_aiokafka(bootstrap, filled_topic, MESSAGES, timeout=20)

    assert result.messages == MESSAGES
    assert 0 < result.seconds < 20
    assert result.per_second > 0


async def test_bare_aiokafka_gives_up_when_the_topic_runs_short(bootstrap: str, filled_topic: str) -> None:
    with pytest.raises(TimeoutError, match=f"did not read {MESSAGES + 1} messages"):
        await measure_bare_aiokafka(bootstrap, filled_topic, MESSAGES + 1, timeout=5)


async def test_naive_faust_reads_every_message(bootstrap: str, filled_topic: str, tmp_path: Path) -> None:
    result = await measure_naive_faust(bootstrap, filled_topic, MESSAGES, tmp_path, timeout=30)

    assert result.messages == MESSAGES
    assert 0 < result.seconds < 30
    assert result.per_second > 0


async def _count_per_partition(bootstrap: str, topic: str) -> dict[int, int]:
    """Read the topic to its end without a group; Tansu's end_offsets() cannot be trusted."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, partition) for partition in range(PARTITIONS)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        counts = dict.fromkeys(range(PARTITIONS), 0)
        while batches := await consumer.getmany(timeout_ms=1000):
            for tp, records in batches.items():
                counts[tp.partition] += len(records)
        return counts
    finally:
        await consumer.stop()
