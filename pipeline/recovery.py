"""Rebuild the worker's state after a start or a takeover, from the topics themselves.

The trace is a pure function of its inputs, so state is rebuilt by replaying the
input topics up to the group's committed offsets, and the action book by reading
back every action already issued. Nothing is emitted while replaying: the batch
after the committed offsets is redelivered and processed as usual.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence

from aiokafka.structs import ConsumerRecord, TopicPartition

from pipeline.errors import BrokerError
from pipeline.kafka import KafkaConnection, connect

log = logging.getLogger(__name__)

Records = Sequence[ConsumerRecord[bytes, bytes]]
_FETCH_WAIT_MS = 10  # the broker's default 500 ms wait on an empty or drained partition adds up across topics


async def read_partitions(
    kafka: KafkaConnection | str,
    stop_at: dict[TopicPartition, int | None],
    apply: Callable[[Records], None],
    timeout_s: float = 600.0,
    start_at: dict[TopicPartition, int] | None = None,
) -> int:
    """Feed ``apply`` every record from the start of each partition (or ``start_at``) up to its offset (None = its end).

    The end is the high-water mark that fetch responses carry (Tansu's ListOffsets is wrong).
    """
    if not stop_at:
        return 0
    consumer = connect(kafka).consumer(
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 << 20,
        fetch_max_wait_ms=_FETCH_WAIT_MS,
    )
    await consumer.start()
    applied = 0
    try:
        consumer.assign(list(stop_at))
        await consumer.seek_to_beginning(*stop_at)
        starts = start_at or {}
        for tp, offset in starts.items():
            consumer.seek(tp, offset)
        pending = {tp for tp, offset in stop_at.items() if offset is None or offset > starts.get(tp, 0)}
        deadline = time.monotonic() + timeout_s
        while pending:
            if time.monotonic() > deadline:
                raise BrokerError(f"recovery did not reach the end of {sorted(pending)} within {timeout_s} s")
            batches = await consumer.getmany(*pending, timeout_ms=200, max_records=50_000)
            for tp, records in batches.items():
                limit = stop_at[tp]
                wanted = records if limit is None else [r for r in records if r.offset < limit]
                apply(wanted)
                applied += len(wanted)
            for tp in list(pending):
                target = stop_at[tp]
                if target is None:
                    target = consumer.highwater(tp)
                if target is not None and await consumer.position(tp) >= target:
                    pending.discard(tp)
        return applied
    finally:
        await consumer.stop()


async def partitions_of(kafka: KafkaConnection | str, topic: str) -> set[int]:
    consumer = connect(kafka).consumer()
    await consumer.start()
    try:
        await consumer.topics()
        return set(consumer.partitions_for_topic(topic) or ())
    finally:
        await consumer.stop()


async def high_water(kafka: KafkaConnection | str, tp: TopicPartition, timeout_s: float = 10.0) -> int:
    """The partition's end, from the high-water mark a fetch response carries."""
    return (await high_waters(kafka, [tp], timeout_s))[tp]


async def high_waters(
    kafka: KafkaConnection | str, tps: Iterable[TopicPartition], timeout_s: float = 10.0
) -> dict[TopicPartition, int]:
    """Each partition's end, from the high-water marks fetch responses carry (Tansu's ListOffsets is wrong)."""
    wanted = set(tps)
    if not wanted:
        return {}
    consumer = connect(kafka).consumer(enable_auto_commit=False, fetch_max_wait_ms=_FETCH_WAIT_MS)
    await consumer.start()
    try:
        consumer.assign(list(wanted))
        await consumer.seek_to_beginning(*wanted)
        deadline = time.monotonic() + timeout_s
        ends: dict[TopicPartition, int] = {}
        while len(ends) < len(wanted):
            if time.monotonic() > deadline:
                raise BrokerError(f"no fetch response for {sorted(wanted - ends.keys())} within {timeout_s} s")
            await consumer.getmany(*(wanted - ends.keys()), timeout_ms=100, max_records=1)
            for tp in wanted - ends.keys():
                highwater = consumer.highwater(tp)
                if highwater is not None:
                    ends[tp] = highwater
        return ends
    finally:
        await consumer.stop()
