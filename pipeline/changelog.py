"""The trail store's changelog topic: each checkpoint's rows, so a store is rebuilt without the input history.

A checkpoint's rows go out as a few messages (each under ``max_action_bytes``), not a
message per row: a row per message would cap the worker at the broker's produce rate
(about 85k messages/s here) divided by the three rows a transfer writes. Keys are
the consumer group, so the topic is read in order. The topic is retention-bounded,
not compacted (batch keys never repeat): whatever the store keeps longer than the
history retention is logged again by eviction (``RocksStores.recheck_ms``).
"""

from __future__ import annotations

import msgspec
from aiokafka import AIOKafkaProducer
from aiokafka.structs import TopicPartition

from pipeline.kafka import KafkaConnection
from pipeline.recovery import Records, read_partitions
from pipeline.trail_store import Change, RocksStores

_encode = msgspec.msgpack.Encoder().encode
decode_rows = msgspec.msgpack.Decoder(list[tuple[bytes, bytes | None]]).decode


def chunks(changes: list[Change], max_bytes: int) -> list[bytes]:
    """The rows as messages of at most about ``max_bytes`` each (a single larger row gets its own)."""
    messages: list[bytes] = []
    start, size = 0, 0
    for index, (key, value) in enumerate(changes):
        row = len(key) + (len(value) if value is not None else 0) + 8
        if size + row > max_bytes and index > start:
            messages.append(_encode(changes[start:index]))
            start, size = index, 0
        size += row
    if start < len(changes):
        messages.append(_encode(changes[start:]))
    return messages


async def log_changes(
    producer: AIOKafkaProducer, topic: str, key: bytes, changes: list[Change], max_bytes: int, partition: int = 0
) -> int | None:
    """Send a checkpoint's rows and wait for the broker; the changelog offset after them (None: nothing sent)."""
    deliveries = [
        await producer.send(topic, message, key=key, partition=partition) for message in chunks(changes, max_bytes)
    ]
    last = None
    for delivery in deliveries:
        last = await delivery
    return None if last is None else last.offset + 1


async def catch_up(kafka: KafkaConnection | str, topic: str, stores: RocksStores) -> int:
    """Apply the changelog from where the store left off to its end; returns how many messages were applied.

    The caller checks first that the store does not claim more of the changelog than the topic holds.
    """
    tp = TopicPartition(topic, 0)
    return await read_partitions(
        kafka,
        {tp: None},
        lambda records: apply_changelog(stores, records),
        start_at={tp: stores.changelog_offset()},
    )


def apply_changelog(stores: RocksStores, records: Records, trail_partition: int | None = None) -> None:
    """Write changelog messages into a store, and how far it now reflects the changelog (with ``trail_partition``,
    that partition's own changelog)."""
    for record in records:
        if record.value:
            stores.apply(decode_rows(record.value))
        if trail_partition is None:
            stores.mark_changelog(record.offset + 1)
        else:
            stores.mark_partition_changelog(trail_partition, record.offset + 1)
