"""The trail role: this worker's share of the trail's partitions, when ``trail_partitions`` > 0.

A thin aiokafka adapter over ``TrailHost``. Its consumer group, ``<group>-trail``, reads
``bank-transactions`` and ``trail-messages`` with its own assignor (``pipeline.trail_assignment``),
so every worker of the group takes a share of both, with the same numbers of each when their
partition counts match. Owning partition p of ``trail-messages`` is owning trail partition p:
it is adopted when assigned (restored from partition p of ``trail-partition-changelog``: the tail
after what the local store holds, or all of it) and released when the next assignment gives it to
another worker; one assigned again goes on as it was. A bank transfer goes to its resolver's
partition whoever reads it.

Per batch, the worker's checkpoint order: take the bank transfers and the trail messages, close the
batch, send its trail messages, changed holdings (for the worker deciding actions, which reads
``trail-holdings``) and changelog rows, and wait for the broker; commit the input offsets; then
write the rows to the local store with how far each partition's changelog reached. A crash anywhere
redelivers the batch; every trail message is a latest-value update, so the replay is harmless, and
whoever adopts a partition tells every other partition to drop what its earlier owner sent (``RESET``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import mode
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from aiokafka.errors import CommitFailedError
from aiokafka.structs import TopicPartition

from pipeline.broker import create_topics
from pipeline.changelog import apply_changelog, decode_rows, log_changes
from pipeline.errors import BrokerError
from pipeline.interception import EMPTY, BatchResult, Rejected
from pipeline.kafka import KafkaConnection
from pipeline.metrics import Metrics
from pipeline.publisher import Publisher
from pipeline.recovery import Records, high_waters, partitions_of, read_partitions
from pipeline.settings import Settings
from pipeline.topics import BANK_TRANSACTIONS, TRAIL_HOLDINGS, TRAIL_MESSAGES, TRAIL_PARTITION_CHANGELOG, catalogue
from pipeline.trail_assignment import trail_assignor
from pipeline.trail_host import TrailHost
from pipeline.trail_store import Change, RocksStores
from processors.records import Transfer
from schemas.decode import Rejection, decode_bank_transaction

log = logging.getLogger(__name__)


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, role: TrailWorker) -> None:
        self.role = role
        self.changed = asyncio.Event()

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        # Every batch commits before it lets go of the lock: what was revoked is committed once this gets it. The
        # trail partitions are suspended, not released: the next assignment decides (``_adopt_assignment``).
        async with self.role.lock:
            self.role.forget_assignment()  # the next one may come from another assignor (a rolling upgrade)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.changed.set()  # adopted by the batch loop, which reads the changelogs without stalling the join


class TrailWorker(mode.Service):
    """Owns the trail role's consumer, producer and local store in one worker process."""

    def __init__(self, settings: Settings, bootstrap: str, metrics: Metrics, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not settings.trail_partitions:
            raise ValueError("the trail role runs only with trail_partitions > 0")
        self.settings = settings
        self.kafka = KafkaConnection.of(settings, bootstrap)
        self.metrics = metrics
        self.lock = asyncio.Lock()  # a batch, and a revocation, one at a time
        self.messages_topic = settings.topic(TRAIL_MESSAGES)
        self.ready = asyncio.Event()  # set once this worker's first assignment is adopted
        self._bank_topic = settings.topic(BANK_TRANSACTIONS)
        self._holdings_topic = settings.topic(TRAIL_HOLDINGS)
        self._changelog_topic = settings.topic(TRAIL_PARTITION_CHANGELOG)
        self._group = f"{settings.consumer_group}-trail"
        self._rebalance = _Rebalance(self)
        # The trail partitions to keep warm copies of, as the group's leader named them; None until an assignment by
        # this release's assignor lands (during a rolling upgrade the group may use another): then every one not owned.
        self._standby: frozenset[int] | None = None
        self._active: frozenset[int] = frozenset()
        self._next_lag_at = 0.0
        self._next_eviction_at = time.monotonic() + settings.housekeeping_interval_s
        self._host: TrailHost | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._publisher: Publisher | None = None

    @property
    def host(self) -> TrailHost:
        assert self._host is not None
        return self._host

    async def on_start(self) -> None:
        settings = self.settings
        trail_topics = [spec for spec in catalogue(settings.trail_partitions) if spec.per_trail_partition]
        await create_topics(self.kafka, trail_topics, settings.topic_prefix, settings.replication_factor)
        for spec in trail_topics:
            found = len(await partitions_of(self.kafka, settings.topic(spec)))
            if found != settings.trail_partitions:
                raise BrokerError(
                    f"{settings.topic(spec)} has {found} partitions but trail_partitions is "
                    f"{settings.trail_partitions}: a cluster keeps the count it started with"
                )
        path = settings.data_dir / f"trail-partitions-{settings.topic_prefix}{settings.consumer_group}"
        stores = RocksStores.for_history(path, settings.trace.history_retention_ms, keep_traced=True)
        self._host = TrailHost(settings.trace, settings.trail_partitions, stores)
        self._producer = self.kafka.producer(acks="all", linger_ms=2, max_batch_size=1 << 20)
        await self._producer.start()
        self._publisher = Publisher(settings, self.kafka, self._producer)
        # Ours, and range after it, give each worker the same numbers of the feed and the trail when their partition
        # counts match, so a feed keyed by txn_id reaches its resolver in process; ours also keeps partitions where
        # their freshest copy is and names the standbys. Range and round robin stay on offer for the workers of an
        # earlier release during a rolling upgrade: a group uses what every member supports.
        assignor = trail_assignor(
            self.messages_topic,
            self._bank_topic,
            settings.standby_replicas if settings.warm_standby else 0,
            self._local_copies,
            self._assigned,
        )
        self._consumer = self.kafka.group_consumer(
            settings,
            self._group,
            partition_assignment_strategy=(assignor, RangePartitionAssignor, RoundRobinPartitionAssignor),
        )
        await self._consumer.start()
        self._consumer.subscribe([self._bank_topic, self.messages_topic], listener=self._rebalance)

    async def on_stop(self) -> None:
        async with self.lock:
            if self._consumer is not None:
                await self._consumer.stop()  # leaves the group: the partitions move on at once
            if self._producer is not None:
                await self._producer.stop()
            if self._host is not None:
                self._host.stores.close()

    def _local_copies(self) -> dict[int, int]:
        """How far this worker's copy of each trail partition reaches: what it tells the group's leader on joining."""
        host = self.host
        return {
            partition: offset
            for partition in range(self.settings.trail_partitions)
            if (offset := host.changelog_offset(partition)) is not None
        }

    def _assigned(self, active: frozenset[int], standby: frozenset[int]) -> None:
        self._active, self._standby = active, standby

    def forget_assignment(self) -> None:
        self._active, self._standby = frozenset(), None

    def release(self, partitions: set[int]) -> None:
        for partition in partitions & self.host.owned:
            self.host.release(partition)
            self.metrics.trail_partitions_owned.dec()

    @mode.Service.task
    async def _consume(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        settings = self.settings
        while not self.should_stop:
            if self._rebalance.changed.is_set():
                async with self.lock:
                    await self._adopt_assignment(consumer)
                continue
            wait_ms, most = settings.batch_timeout_ms, settings.batch_max_records
            if self.host.waiting():
                # Its own queues first, the feed paused: what it sends its own partitions meanwhile lengthens the
                # queue it must read before they take messages in process, and a feed read on would never let it end.
                queues = [tp for tp in consumer.assignment() if tp.topic == self.messages_topic]
                batches = await consumer.getmany(*queues, timeout_ms=wait_ms, max_records=most)
            else:
                batches = await consumer.getmany(timeout_ms=wait_ms, max_records=most)
            if self._rebalance.changed.is_set():
                continue  # the assignment changed under this batch: it is read again after the adoption
            async with self.lock:
                if self.should_stop:
                    return  # not committed: redelivered
                if batches:
                    await self._process(consumer, batches)
                await self._note_caught_up(consumer)

    async def _adopt_assignment(self, consumer: AIOKafkaConsumer) -> None:
        """Release the trail partitions that moved, adopt those just assigned, then read every assigned partition from
        its committed offset.

        A partition assigned again goes on as it was, with no ``RESET`` and no pause of the feed, as Kafka Streams
        resumes a suspended task, unless its changelog grew meanwhile: then another worker owned it in between (this
        one lost it without noticing, a session that timed out), and it is adopted afresh from the tail.
        """
        self._rebalance.changed.clear()
        assigned = consumer.assignment()
        if self.should_stop:
            return
        owned = {tp.partition for tp in assigned if tp.topic == self.messages_topic}
        queues = {p: TopicPartition(self.messages_topic, p) for p in owned}
        changelogs = {p: TopicPartition(self._changelog_topic, p) for p in owned}
        ends = await high_waters(self.kafka, [*queues.values(), *changelogs.values()])
        written_elsewhere = {p for p in owned & self.host.owned if ends[changelogs[p]] != self.host.changelog_offset(p)}
        self.release((self.host.owned - owned) | written_elsewhere)
        adopted = sorted(owned - self.host.owned)
        if adopted:
            for partition in adopted:
                await self._adopt(partition, ends[changelogs[partition]])
            self.host.queue_ends({p: ends[tp] for p, tp in queues.items()})
        for tp in assigned:
            committed = await consumer.committed(tp)
            if committed is None:
                await consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, committed)
        if adopted:  # the RESETs, and the adopted partitions' contents and holdings, go out at once
            await self._process(consumer, {})
        self.ready.set()

    async def _adopt(self, partition: int, end: int) -> None:
        """Restore a trail partition from its changelog (which ends at ``end``): the tail after the local copy, or
        all of it."""
        tp = TopicPartition(self._changelog_topic, partition)
        local = self.host.changelog_offset(partition)
        tail = local is not None and local <= end  # beyond the end: the copy is of another cluster's changelog
        rows: list[Change] = []

        def take(records: Records) -> None:
            for record in records:
                if record.value:
                    rows.extend(decode_rows(record.value))

        start = local if tail and local is not None else 0
        read = await read_partitions(self.kafka, {tp: end}, take, start_at={tp: start}) if start < end else 0
        self.metrics.trail_changelog_restored.labels(str(partition)).inc(read)
        self.host.adopt(partition, rows, tail=tail, changelog_end=end)
        self.metrics.trail_partitions_owned.inc()
        self.metrics.trail_adoptions.inc()
        log.info("adopted trail partition %d: %d changelog rows (%s)", partition, len(rows), "tail" if tail else "full")

    @mode.Service.task
    async def _keep_warm(self) -> None:
        """With ``warm_standby``, follow the changelogs of the trail partitions the group's leader named for this
        worker (``standby_replicas`` per partition) into its store: standby replicas. Adopting one of them then
        reads only what its changelog gained since the last poll; a copy no longer named is dropped.

        Rows are applied under the batch lock, never between a batch's ``close_batch`` and its ``flush``; a
        partition this worker adopted meanwhile is left to the adoption, which reads its tail after the copy.
        """
        if not self.settings.warm_standby:
            return
        await self.ready.wait()  # the first assignment is adopted: the store is open
        tail = self.kafka.consumer(
            enable_auto_commit=False,
            max_partition_fetch_bytes=4 << 20,
            fetch_max_wait_ms=self.settings.fetch_max_wait_ms,
        )
        await tail.start()
        try:
            followed: frozenset[int] = frozenset()
            named: tuple[frozenset[int], frozenset[int] | None] | None = None  # the assignment followed
            ends: dict[TopicPartition, int] = {}  # the copied changelogs' ends, as last heard
            while not self.should_stop:
                others = self._to_copy()
                if others != followed or (self._active, self._standby) != named:  # a new one may drop copies
                    followed, named = others, (self._active, self._standby)
                    ends = await self._follow(tail, others)
                    continue
                if not followed:
                    await self.sleep(0.2)
                    continue
                polled = await tail.getmany(timeout_ms=200)
                async with self.lock:
                    if self.should_stop:
                        return  # the store may be closed
                    for tp, records in polled.items():
                        self._apply_standby(tp, records)
                    self._note_standby_lag(tail, ends)
        finally:
            await tail.stop()

    def _to_copy(self) -> frozenset[int]:
        """The partitions to keep warm copies of: those the leader named, or, assigned by another release's assignor,
        every one this worker does not own."""
        everything = frozenset(range(self.settings.trail_partitions))
        wanted = everything if self._standby is None else self._standby
        return wanted - self.host.owned - self._active

    async def _follow(self, tail: AIOKafkaConsumer, partitions: frozenset[int]) -> dict[TopicPartition, int]:
        """Follow these partitions' changelogs from where this store's copy of each ends (a copy of another
        cluster's changelog, ahead of its end, is dropped and followed from the start); their ends now."""
        tps = [TopicPartition(self._changelog_topic, p) for p in sorted(partitions)]
        ends = await high_waters(self.kafka, tps)
        async with self.lock:
            if self.should_stop:
                return ends
            if self._standby is not None:  # copies no longer wanted: their disk back (the changelog keeps them all)
                kept = partitions | self._to_copy() | self.host.owned | self._active
                for partition in self._local_copies().keys() - kept:
                    self.host.stores.drop_partition(partition)
                self.metrics.trail_local_copies.set(len(self._local_copies()))
            tail.assign(tps)
            for tp in tps:
                copied = self.host.changelog_offset(tp.partition)
                if tp.partition in self.host.owned:
                    continue  # adopted meanwhile; the next round follows the rest
                if copied is None or copied > ends[tp]:
                    self.host.stores.drop_partition(tp.partition)
                    copied = 0
                    self.host.stores.mark_partition_changelog(tp.partition, 0)
                tail.seek(tp, copied)
            self.metrics.trail_standby_partitions.set(len(tps))
            self._note_standby_lag(tail, ends)
        return ends

    def _note_standby_lag(self, tail: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> None:
        """How much of the copied changelogs the copies miss; ``ends`` moves on with the high-water marks fetched."""
        lag = 0
        for tp, end in ends.items():
            ends[tp] = end = tail.highwater(tp) or end  # None until a fetch of it returns
            if tp.partition not in self.host.owned:
                lag += max(0, end - (self.host.changelog_offset(tp.partition) or 0))
        self.metrics.standby_changelog_lag.set(lag)

    def _apply_standby(self, tp: TopicPartition, records: Records) -> None:
        partition = tp.partition
        copied = self.host.changelog_offset(partition)
        if partition in self.host.owned or copied is None:
            return  # adopted since the poll: the adoption reads the tail after the copy
        fresh = [record for record in records if record.offset >= copied]  # a poll from before a re-seek
        apply_changelog(self.host.stores, fresh, trail_partition=partition)

    async def _process(self, consumer: AIOKafkaConsumer, batches: dict[TopicPartition, Records]) -> None:
        started = time.perf_counter()
        host, settings = self.host, self.settings
        if time.monotonic() >= self._next_eviction_at:  # in a batch: the rows it deletes are logged with it
            self._next_eviction_at = time.monotonic() + settings.housekeeping_interval_s
            self.metrics.expired.labels("transactions").inc(host.evict())
        rejected: list[Rejected] = []
        for tp, records in batches.items():
            if tp.topic == self._bank_topic:
                transfers: list[Transfer] = []
                for record in records:
                    decoded = (
                        decode_bank_transaction(record.value, settings.max_message_bytes) if record.value else EMPTY
                    )
                    if type(decoded) is Transfer:
                        transfers.append(decoded)
                    else:
                        rejected.append(Rejected(record, decoded))  # type: ignore[arg-type]
                host.take_feed(transfers)
            else:
                for record in records:
                    error = host.take_messages(tp.partition, record.value or b"")
                    if error is not None:
                        rejected.append(Rejected(record, Rejection("invalid_trail_message", str(error))))
        batch = host.close_batch()
        producer = self._producer
        assert producer is not None and self._publisher is not None
        to_queues = []  # to partitions' queues: (partition, delivery)
        for partition, messages in batch.messages.items():
            for raw in messages:
                to_queues.append((partition, await producer.send(self.messages_topic, raw, partition=partition)))
            self.metrics.trail_messages_sent.labels(str(partition)).inc(batch.message_counts[partition])
        deliveries = [delivery for _, delivery in to_queues]
        for partition, raw in batch.holdings.items():
            deliveries.append(await producer.send(self._holdings_topic, raw, partition=partition))
        if rejected:
            await self._publisher.publish(BatchResult(rejected=rejected), int(time.time() * 1000))
        changelog_ends = {}
        for partition, rows in batch.changelog.items():
            end = await log_changes(
                producer, self._changelog_topic, bytes([partition]), rows, settings.max_action_bytes, partition
            )
            if end is not None:
                changelog_ends[partition] = end
        await asyncio.gather(*deliveries)
        for partition, delivery in to_queues:
            host.sent(partition, delivery.result().offset + 1)
        try:
            if batches:
                await consumer.commit({tp: records[-1].offset + 1 for tp, records in batches.items()})
        except CommitFailedError as error:
            # As a crash between sending and committing: the batch is read again, here or by an adopter, and its
            # messages are latest-value updates. Its rows are in the changelog, so the local store takes them too.
            log.warning("trail batch not committed (%s): it is read again", error)
        host.flush(changelog_ends)
        metrics = self.metrics
        for tp, records in batches.items():
            metrics.events_consumed.labels(tp.topic).inc(len(records))
        for rejection in rejected:
            metrics.dead_letters.labels(rejection.record.topic, rejection.rejection.reason).inc()
        metrics.trail_batch_seconds.observe(time.perf_counter() - started)

    async def _note_caught_up(self, consumer: AIOKafkaConsumer) -> None:
        """A partition of this worker's read to the end of its queue gets its messages in process from now on;
        and the lag, from the high-water marks fetches carry (Tansu's ListOffsets is wrong)."""
        for partition in self.host.waiting():
            self.host.read_to(partition, await consumer.position(TopicPartition(self.messages_topic, partition)))
            if partition not in self.host.waiting():
                log.info("trail partition %d: queue read to its end, its messages are delivered in process", partition)
        if time.monotonic() < self._next_lag_at:
            return
        self._next_lag_at = time.monotonic() + 1.0
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            if highwater is not None:
                lag = max(0, highwater - await consumer.position(tp))
                self.metrics.set_lag(tp.topic, tp.partition, lag, consumergroup=self._group)
