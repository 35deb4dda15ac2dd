"""One worker's share of the money trail, between the broker and ``MoneyTrail``; no broker here.

The worker's trail role (still to build, ``docs/partitioned-engine.md``) is a thin aiokafka
adapter over this. Per batch it hands in the bank transfers it read and the trail messages
for its partitions, then sends what ``close_batch`` returns (trail messages, holdings and
changelog rows, each to its partition), waits for the broker, commits the batch's offsets and
calls ``flush``. A partition it is given is ``adopt``ed from its changelog's rows; one taken
away is ``release``d after the batch that last touched it was committed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from pipeline.trail_messages import BadTrailMessage, decode_messages, encode_holdings, encode_messages
from pipeline.trail_store import Change, RocksStores, partition_of_row
from processors.money_trail import Holding, HoldingTrace, MoneyTrail, TraceSettings
from processors.records import Transfer


@dataclass(slots=True)
class TrailBatch:
    """What a batch must send, by partition, before its offsets are committed."""

    messages: dict[int, bytes] = field(default_factory=dict)  # trail-messages: many trail messages to one
    holdings: dict[int, bytes] = field(default_factory=dict)  # trail-holdings: the partition's changed holdings
    changelog: dict[int, list[Change]] = field(default_factory=dict)  # trail-changelog: the partition's rows


def retrace_holdings(trail: MoneyTrail) -> dict[int, bytes]:
    """Re-trace; the changed holdings of each partition, encoded for ``trail-holdings``, a reset first for each
    partition adopted since the last call (with all of its holdings)."""
    changed = trail.retrace()
    resets = trail.take_resets()
    by_partition: dict[int, list[tuple[Holding, HoldingTrace | None]]] = {partition: [] for partition in resets}
    for holding, trace in changed.items():
        by_partition.setdefault(trail.partition_of_account(holding[0]), []).append((holding, trace))
    return {
        partition: encode_holdings(partition, partition in resets, changes)
        for partition, changes in by_partition.items()
    }


class TrailHost:
    def __init__(self, settings: TraceSettings, partitions: int, stores: RocksStores) -> None:
        if not stores.keep_traced:
            raise ValueError("a trail host's partitions move between workers: its store must keep the traced state")
        self.stores = stores
        self.trail = MoneyTrail(settings, partitions, stores=stores, owned=())

    @property
    def owned(self) -> set[int]:
        return set(self.trail.accounts)

    def adopt(self, partition: int, changelog: Iterable[Change] | None) -> None:
        """Own a partition: its changelog's rows replace whatever this store had of it.

        None: this store already holds the partition as its last checkpoint left it (a restart on its own disk).
        """
        if changelog is not None:
            self.stores.drop_partition(partition)
            self.stores.apply(changelog)
        self.trail.adopt(partition)

    def release(self, partition: int) -> None:
        """Stop owning a partition (its rows stay on disk until it is adopted here again, from its changelog)."""
        self.trail.release(partition)

    def take_feed(self, transfers: Iterable[Transfer]) -> None:
        for transfer in transfers:
            self.trail.add_transaction(transfer)

    def take_messages(self, partition: int, raw: bytes) -> BadTrailMessage | None:
        """One Kafka message of ``trail-messages``; what was wrong with it, if it could not be read (dead-letter it)."""
        try:
            messages = decode_messages(raw)
        except BadTrailMessage as error:
            return error
        self.trail.receive(partition, messages)
        return None

    def caught_up(self, partition: int) -> None:
        """This worker has read the partition's trail messages to their end (its position reached the high-water
        mark) since it last adopted a partition: messages to it are delivered in process from now on."""
        self.trail.deliver_locally(partition)

    def close_batch(self) -> TrailBatch:
        """Re-trace, and return what must go out before the batch's offsets are committed.

        Nothing may touch the trail between this and ``flush``: the store does not show the batch's
        rows to reads from the moment they are staged until they are written.
        """
        trail = self.trail
        batch = TrailBatch(holdings=retrace_holdings(trail))
        for partition, messages in trail.take_outbox().items():
            batch.messages[partition] = encode_messages(messages)
        for key, value in self.stores.stage({}):
            owner = partition_of_row(key)
            if owner is not None:  # the accounts seen and the input offsets stay with this store
                batch.changelog.setdefault(owner, []).append((key, value))
        return batch

    def flush(self) -> None:
        """After the batch's offsets are committed: its rows to the local store."""
        self.stores.flush(None)
