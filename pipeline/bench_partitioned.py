"""Bench (k): what spreading the trail over processes costs, before any broker is involved.

The same bank transfers are indexed twice, side by side: by one process owning every trail
partition (messages between partitions delivered in process), and by two processes owning half
each, where every message for the other's partitions is encoded, queued and decoded as it would
cross ``trail-messages``. The two run one after the other in this process, so the second figure
is the work of both together: each of two workers running in parallel would carry about half.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from connectors.synthetic_feed import bulk_bank_transactions
from pipeline.settings import Settings
from pipeline.trail_messages import decode_messages, encode_messages
from processors.money_trail import MoneyTrail
from processors.records import Transfer
from schemas.decode import decode_bank_transaction

BATCH = 2_000


@dataclass(frozen=True, slots=True)
class PartitionedTrail:
    transfers: int
    partitions: int
    one_process_us: float  # CPU per transfer, one process owning every partition
    two_processes_us: float  # CPU per transfer, both processes together
    messages_per_transfer: float  # crossing between the two processes
    bytes_per_transfer: float


def measure_partitioned_trail(count: int, partitions: int = 4, start_ms: int = 1_790_000_000_000) -> PartitionedTrail:
    trace = Settings().trace
    transfers = [decode_bank_transaction(raw, 65_536) for raw in bulk_bank_transactions(count, 11, start_ms)]
    feed = [transfer for transfer in transfers if isinstance(transfer, Transfer)]

    alone = MoneyTrail(trace, partitions)
    started = time.process_time()
    for start in range(0, len(feed), BATCH):
        for transfer in feed[start : start + BATCH]:
            alone.add_transaction(transfer)
        alone.retrace()
    one_s = time.process_time() - started

    pair = [MoneyTrail(trace, partitions, owned=range(n, partitions, 2)) for n in (0, 1)]
    for trail in pair:
        for partition in trail.accounts:
            trail.deliver_locally(partition)  # nothing queued for them yet
    queues: dict[int, list[bytes]] = {partition: [] for partition in range(partitions)}
    sent = sent_bytes = 0
    started = time.process_time()

    def send(trail: MoneyTrail) -> None:
        nonlocal sent, sent_bytes
        for partition, messages in trail.take_outbox().items():
            raw = encode_messages(messages)
            queues[partition].append(raw)
            sent += len(messages)
            sent_bytes += len(raw)

    for start in range(0, len(feed), BATCH):
        half = (start // BATCH) % 2  # each reads half of the bank feed's partitions
        for transfer in feed[start : start + BATCH]:
            pair[half].add_transaction(transfer)
        pair[half].retrace()
        send(pair[half])
        while any(queues.values()):
            for trail in pair:
                for partition in trail.accounts:
                    for raw in queues[partition]:
                        trail.receive(partition, decode_messages(raw))
                    queues[partition] = []
                trail.retrace()
                send(trail)
    two_s = time.process_time() - started
    assert len(alone) == sum(len(trail) for trail in pair) == len(feed)
    return PartitionedTrail(
        transfers=len(feed),
        partitions=partitions,
        one_process_us=one_s / len(feed) * 1e6,
        two_processes_us=two_s / len(feed) * 1e6,
        messages_per_transfer=sent / len(feed),
        bytes_per_transfer=sent_bytes / len(feed),
    )
