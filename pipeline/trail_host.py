"""One worker's share of the money trail, between the broker and ``MoneyTrail``; no broker here.

The worker's trail role (``pipeline.trail_worker``) is a thin aiokafka adapter over this. Per
batch it hands in the bank transfers it read and the trail messages for its partitions, then
sends what ``close_batch`` returns (trail messages, holdings and changelog rows, each to its
partition), waits for the broker, commits the batch's offsets and calls ``flush``. A partition
it is given is ``adopt``ed from its changelog's rows; one taken away is ``release``d after the
batch that last touched it was committed. When its own partitions may take messages in process
is decided here too (``read_to``), from the queue offsets the worker reports.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from pipeline.trail_messages import BadTrailMessage, decode_messages, encode_holdings, encode_records
from pipeline.trail_store import Change, RocksStores, partition_of_row
from processors.money_trail import Holding, HoldingTrace, MoneyTrail, TraceSettings
from processors.records import AccountKey, Transfer


@dataclass(slots=True)
class TrailBatch:
    """What a batch must send, by partition, before its offsets are committed."""

    messages: dict[int, list[bytes]] = field(default_factory=dict)  # trail-messages: many trail messages to each
    message_counts: dict[int, int] = field(default_factory=dict)  # how many trail messages those carry
    holdings: dict[int, bytes] = field(default_factory=dict)  # trail-holdings: the partition's changed holdings
    changelog: dict[int, list[Change]] = field(default_factory=dict)  # trail-changelog: the partition's rows


def retrace_holdings(trail: MoneyTrail) -> dict[int, bytes]:
    """Re-trace; the changed holdings of each partition, encoded for ``trail-holdings``, a reset first for each
    partition adopted since the last call (with all of its holdings). The accounts seen for the first time go with
    their partition's holdings: the case role links payment proxies to them."""
    changed = trail.retrace()
    resets = trail.take_resets()
    by_partition: dict[int, list[tuple[Holding, HoldingTrace | None]]] = {partition: [] for partition in resets}
    for holding, trace in changed.items():
        by_partition.setdefault(trail.partition_of_account(holding[0]), []).append((holding, trace))
    seen: dict[int, list[AccountKey]] = {}
    for account in trail.drain_new_accounts():
        seen.setdefault(trail.partition_of_account(account), []).append(account)
    return {
        partition: encode_holdings(
            partition, partition in resets, by_partition.get(partition, ()), seen.get(partition, ())
        )
        for partition in by_partition.keys() | seen.keys()
    }


class TrailHost:
    """The trail partitions one worker owns, on its own store: a batch in, what to send out, the commit's flush."""

    def __init__(self, settings: TraceSettings, partitions: int, stores: RocksStores) -> None:
        if not stores.keep_traced:
            raise ValueError("a trail host's partitions move between workers: its store must keep the traced state")
        self.stores = stores
        self.trail = MoneyTrail(settings, partitions, stores=stores, owned=())
        self.trail.drain_new_accounts()  # the store's: published with the batch that first saw them
        self._reach: dict[int, int] = {}  # partitions not taking messages in process yet: the queue offset to read to
        self._closed_since_adoption = True

    @property
    def owned(self) -> set[int]:
        return set(self.trail.accounts)

    def adopt(
        self, partition: int, changelog: Iterable[Change] | None, tail: bool = False, changelog_end: int | None = None
    ) -> None:
        """Own a partition, restored from its changelog's rows.

        ``changelog``: all of its rows, which replace whatever this store had of the partition; with ``tail``, only
        those after what the store reflects (``changelog_offset``); None: the store holds the partition as its last
        checkpoint left it. ``changelog_end``: the changelog offset the store reflects after this.
        """
        if changelog is not None:
            if not tail:
                self.stores.drop_partition(partition)
            self.stores.apply(changelog)
            self.stores.forget_cached(partition)  # another owner's rows may have moved its index sequence on
        if changelog_end is not None:
            self.stores.mark_partition_changelog(partition, changelog_end)
        self.trail.adopt(partition)  # no partition here takes messages in process any more
        self._reach = dict.fromkeys(self.trail.accounts, 0)
        self._closed_since_adoption = False

    def changelog_offset(self, partition: int) -> int | None:
        """How far into the partition's changelog this store's copy reaches (None: it has none)."""
        return self.stores.partition_changelog_offset(partition)

    def release(self, partition: int) -> None:
        """Stop owning a partition (its rows stay on disk until it is adopted here again, from its changelog)."""
        self.trail.release(partition)
        self.stores.forget_cached(partition)  # or its clock and index rows would still be staged, and logged
        self._reach.pop(partition, None)

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

    def evict(self) -> int:
        """Forget the transfers of this worker's partitions past the history retention (``MoneyTrail.evict``); the
        rows it deletes go out with the next ``close_batch``. Returns how many transfers went."""
        return self.trail.evict()

    def queue_ends(self, ends: Mapping[int, int]) -> None:
        """Where the queues of partitions owned here ended when they were adopted (measured after ``adopt``, before
        the next ``close_batch``): what their earlier owners sent lies before."""
        for partition, end in ends.items():
            if partition in self._reach:
                self._reach[partition] = max(self._reach[partition], end)

    def sent(self, partition: int, next_offset: int) -> None:
        """The broker took trail messages for ``partition`` up to ``next_offset`` (exclusive)."""
        if partition in self._reach:
            self._reach[partition] = max(self._reach[partition], next_offset)

    def waiting(self) -> set[int]:
        """Partitions owned here whose messages still go through their queue."""
        return set(self._reach)

    def read_to(self, partition: int, position: int) -> None:
        """This worker has read the partition's queue up to ``position``. Once that is past what its earlier owners
        sent, and past what this worker sent it since its last adoption (the ``RESET``s among it, which
        ``close_batch`` sends), messages to it are delivered in process: none can overtake a queued one.
        Call it once the broker has taken the batch's messages (``sent``), never between ``close_batch`` and that.
        """
        reach = self._reach.get(partition)
        if reach is not None and self._closed_since_adoption and position >= reach:
            del self._reach[partition]
            self.trail.deliver_locally(partition)

    def close_batch(self) -> TrailBatch:
        """Re-trace, and return what must go out before the batch's offsets are committed.

        Nothing may touch the trail between this and ``flush``: the store does not show the batch's
        rows to reads from the moment they are staged until they are written.
        """
        trail = self.trail
        batch = TrailBatch(holdings=retrace_holdings(trail))
        self._closed_since_adoption = True
        for partition, messages in trail.take_outbox().items():
            batch.messages[partition] = encode_records(messages)
            batch.message_counts[partition] = len(messages)
        for key, value in self.stores.stage({}):
            owner = partition_of_row(key)
            if owner is not None:  # the accounts seen and the input offsets stay with this store
                batch.changelog.setdefault(owner, []).append((key, value))
        return batch

    def flush(self, changelog_ends: Mapping[int, int] | None = None) -> None:
        """After the batch's offsets are committed: its rows to the local store, with how far each partition's
        changelog reached once they were sent."""
        self.stores.flush(None, changelog_ends)
