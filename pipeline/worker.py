"""The worker's hot loop: consume a batch, trace it, publish what it produced, then commit.

faust's per-event path tops out at a few thousand events/s here, so every input runs
in this batch loop on aiokafka, a ``mode`` service (``pipeline.app``).

Commit order, per batch (Quix Streams' checkpoint; what makes at-least-once true after a crash):
  1. decode, trace and correlate the batch in memory (the trail store buffers its writes);
  2. send every action (to its shared and its addressee's topic), warning and dead letter, and
     wait until the broker acknowledged them;
  3. send the trail store's rows for the batch to its changelog, with the offsets they reflect,
     and wait for the broker: a changelog never holds a batch whose actions are not out;
  4. commit the batch's offsets;
  5. write the trail store's rows to local disk, in one atomic batch;
  6. record metrics.
A crash before step 4 redelivers the batch; a crash before step 5 leaves the local store a
batch behind, which the changelog's tail (or the input's) brings up to date.

With ``trail_partitions`` > 0 the trail runs in every worker's trail role (``pipeline.trail_worker``)
instead: this worker then reads ``trail-holdings`` in place of the bank feed, traces nothing itself
(``processors.trail_view``), and sends the reports' claims to the trail's partitions before it commits.

Recovery: the trail store catches up with its changelog (all of it if the disk was lost),
the actions already issued are read back, then the small inputs (reports, telecom events,
acks) are replayed up to the committed offsets, and bank transfers only from where the
store left off. The trace is rebuilt from the reports and the stored transfers, so the
redelivered batch reproduces the same actions and issues no new versions. With
``trail_store = memory`` every input is replayed from the start instead. Escalations come
from a timer, under the same lock as the batches, so versions of one action go out in order.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import mode
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, IllegalStateError
from aiokafka.structs import TopicPartition

from pipeline.assignment import SingleActiveAssignor
from pipeline.broker import create_topics
from pipeline.changelog import apply_changelog, catch_up, log_changes
from pipeline.encode import restore_freeze_order, restore_grant, restore_suspension, restore_warning
from pipeline.interception import BatchResult, Interception, IssuedAction
from pipeline.kafka import KafkaConnection
from pipeline.keys import load_institution_keys, require_real_keys
from pipeline.metrics import Metrics
from pipeline.publisher import Publisher
from pipeline.recovery import Records, high_water, high_waters, partitions_of, read_partitions
from pipeline.settings import Settings
from pipeline.topics import (
    BANK_TRANSACTIONS,
    FREEZE_ACTIONS,
    HELD_ACTIONS,
    RELEASE_ANSWERS,
    RELEASE_REQUESTS,
    SUSPENSION_ACTIONS,
    TRAIL_CHANGELOG,
    TRAIL_HOLDINGS,
    TRAIL_MESSAGES,
    VICTIM_WARNINGS,
    addressee_spec,
    input_topic_pattern,
)
from pipeline.trail_messages import encode_records
from pipeline.trail_store import RocksStores
from processors.priority import priority_band
from processors.trail_view import TrailView

log = logging.getLogger(__name__)

# Between chunks of the feed: the event loop runs meanwhile, so a fetch response that came back reaches the
# consumer's buffer (socket, connection reader, fetch task: a few rounds), and a report in it is found. Three
# zero-length sleeps (three rounds) in its place: measured, reports waited about twice as long.
FETCHER_PAUSE_S = 0.001


class _AssignmentWatch(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self) -> None:
        self.assigned: set[TopicPartition] = set()
        self.changed = asyncio.Event()
        self.regained = asyncio.Event()  # the same partitions again: held by another worker in between?
        self.recovered_once = False

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        pass

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        # A standby joining or leaving re-runs the assignment; the state only needs a rebuild
        # when this worker's partitions changed, or another worker held them meanwhile.
        if set(assigned) != self.assigned or not self.recovered_once:
            self.assigned = set(assigned)
            self.changed.set()
        elif assigned:
            self.regained.set()


@dataclass(slots=True)
class Recovery:
    """What the last start or takeover read to rebuild its state."""

    changelog_messages: int = 0
    replayed: Counter[str] = field(default_factory=Counter)  # input records per topic
    restored_actions: int = 0
    seconds: float = 0.0


class InterceptionWorker(mode.Service):
    """Owns the consumer, the producer and the interception state of one worker process."""

    def __init__(self, settings: Settings, bootstrap: str, metrics: Metrics, **kwargs: Any) -> None:
        require_real_keys(settings)  # before anything connects: a worker signing with a public key is refused
        super().__init__(**kwargs)
        self.settings = settings
        self.kafka = KafkaConnection.of(settings, bootstrap)
        self.metrics = metrics
        self._institution_keys = load_institution_keys(settings)  # read once: a bad registry fails the start
        # trail_partitions > 0: the trail runs in every worker's trail role (pipeline.trail_worker); this one follows
        # its holdings and sends it the reports' claims.
        self._partitioned = settings.trail_partitions > 0
        self._trail_view: TrailView | None = None
        self.interception = self._new_interception(None)
        self.ready = asyncio.Event()
        self._watch = _AssignmentWatch()
        self._awaiting_first_action: dict[str, int] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._next_lag_at = 0.0
        self._publisher: Publisher | None = None
        # How far the state reaches, to tell whether another worker held the partitions in between: the offsets
        # this worker committed, and the ends of the issued-action topics when it last recovered.
        self._committed: dict[TopicPartition, int] = {}
        self._issued: dict[TopicPartition, int] = {}
        self._publishing = asyncio.Lock()  # batch and escalation results go out one at a time, in order
        self._stores: RocksStores | None = None
        self._standing_by = False  # another worker holds the input partitions
        self.recovery = Recovery()
        self._bank_topic = settings.topic(BANK_TRANSACTIONS)
        self._changelog = settings.topic(TRAIL_CHANGELOG)
        self._trail_messages = settings.topic(TRAIL_MESSAGES)
        self._feed_chunk = settings.urgent_batch_max_records or settings.batch_max_records

    def _new_interception(self, stores: RocksStores | None) -> Interception:
        view = TrailView(self.settings.trace, self.settings.trail_partitions) if self._partitioned else None
        self._trail_view = view
        return Interception(self.settings, stores, self._institution_keys, trail=view)

    async def on_start(self) -> None:
        settings = self.settings
        self._producer = self.kafka.producer(acks="all", linger_ms=2, max_batch_size=1 << 20)
        self._consumer = self.kafka.group_consumer(
            settings,
            settings.consumer_group,
            group_instance_id=settings.group_instance_id,
            partition_assignment_strategy=(SingleActiveAssignor(),),
        )
        await self._producer.start()
        self._publisher = Publisher(settings, self.kafka, self._producer)
        # Each requester's own release-requests topic (broker ACLs let only it write there) must exist to be read.
        requesters = [addressee_spec(RELEASE_REQUESTS, r) for r in settings.release_request_topics]
        await create_topics(self.kafka, requesters, settings.topic_prefix, settings.replication_factor)
        await self._consumer.start()
        # By pattern: institutions' own ack topics (action-acks.<institution>) are picked up as they are
        # created, within metadata_max_age_ms; taking one up is a rebalance, so the worker recovers.
        also, without = list(settings.release_request_topics.values()), []
        if self._partitioned:  # the trail role reads the bank feed; this one, what the trail partitions hold
            also.append(settings.topic(TRAIL_HOLDINGS))
            without.append(BANK_TRANSACTIONS)
        pattern = input_topic_pattern(settings.topic_prefix, also=also, without=without)
        self._consumer.subscribe(pattern=pattern, listener=self._watch)

    async def on_stop(self) -> None:
        async with self._publishing:  # no batch, escalation or housekeeping is using the store as it closes
            self._close_stores()
        if self._consumer is not None:
            await self._consumer.stop()
        if self._producer is not None:
            await self._producer.stop()

    @mode.Service.task
    async def _consume(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        while not self.should_stop:
            if self._watch.changed.is_set():
                async with self._publishing:  # no escalation goes out from half-rebuilt state
                    await self._recover()
                continue
            if self._watch.regained.is_set():
                self._watch.regained.clear()
                async with self._publishing:  # its own escalations are counted before the check
                    if await self._held_elsewhere():
                        log.warning("another worker held this one's partitions meanwhile: rebuilding its state")
                        self._watch.changed.set()
                continue
            batches = await self._next_batch(consumer)
            if self._watch.changed.is_set():
                continue  # the assignment changed under this batch: recover first, it is read again
            if batches:
                await self._process(consumer, batches)
            if time.monotonic() >= self._next_lag_at:
                self._next_lag_at = time.monotonic() + 1.0
                await self._record_lag()

    async def _next_batch(self, consumer: AIOKafkaConsumer) -> dict[TopicPartition, Records]:
        """Reports, telecom events and acks first, then the bank feed's first chunk.

        aiokafka hands out buffered records partition by partition, in the order their fetches came
        back, and fetches a partition again only when its buffer is empty. So a report fetched after
        the feed's partitions waited behind up to a whole fetch of each (about 16,000 transactions),
        several batches, whenever the worker was behind the feed. A batch carrying any of them takes
        at most ``urgent_batch_max_records`` transactions, so their actions go out in one short batch.
        One arriving while a batch of the feed is traced ends that batch (``_trace``).
        """
        settings = self.settings
        assigned = consumer.assignment()
        urgent, feed = self._urgent_and_feed(assigned)
        batches = {}
        if urgent:
            batches = await consumer.getmany(*urgent, timeout_ms=0, max_records=settings.batch_max_records)
        taken = sum(len(records) for records in batches.values())
        cap = settings.urgent_batch_max_records if batches else self._feed_chunk
        room = min(settings.batch_max_records - taken, cap)
        if room > 0:
            wait_ms = 0 if batches else settings.batch_timeout_ms
            # The feed only: what urgent arrives meanwhile is taken between chunks in _trace, and ends the batch
            # (an empty list would mean every partition to aiokafka).
            more = feed or urgent
            found = await consumer.getmany(*more, timeout_ms=wait_ms, max_records=room) if more else {}
            for tp, records in found.items():
                batches[tp] = [*batches.get(tp, ()), *records]
        if not assigned:
            await asyncio.sleep(settings.batch_timeout_ms / 1000)  # standing by: nothing to read, no busy loop
        return batches

    def _urgent_and_feed(self, assigned: set[TopicPartition]) -> tuple[list[TopicPartition], list[TopicPartition]]:
        urgent = [tp for tp in assigned if tp.topic != self._bank_topic]
        return urgent, [tp for tp in assigned if tp.topic == self._bank_topic]

    async def _trace(self, consumer: AIOKafkaConsumer, batches: dict[TopicPartition, Records]) -> BatchResult:
        """Trace the batch, and more of the feed in chunks while it stays a feed-only batch.

        The feed is traced ``urgent_batch_max_records`` at a time; between chunks the fetcher takes in
        what arrived, and a report (or telecom event, ack, release request) found then ends the batch
        with it. So a report waits for one chunk of the feed, not a whole batch, however far behind
        the feed the worker is. ``batches`` grows with what was taken.
        """
        settings, interception = self.settings, self.interception
        result = BatchResult()
        interception.ingest([record for batch in batches.values() for record in batch], result)
        urgent, feed = self._urgent_and_feed(consumer.assignment())
        room = settings.batch_max_records - sum(len(batch) for batch in batches.values())
        if any(tp.topic != self._bank_topic for tp in batches):
            room = 0  # already an urgent batch: out it goes
        while room > 0 and feed and not self._watch.changed.is_set() and not self.should_stop:
            await asyncio.sleep(FETCHER_PAUSE_S)
            found = (
                await consumer.getmany(*urgent, timeout_ms=0, max_records=settings.batch_max_records) if urgent else {}
            )
            if not found:
                found = await consumer.getmany(*feed, timeout_ms=0, max_records=min(room, self._feed_chunk))
                if not found:
                    break
                room -= sum(len(records) for records in found.values())
            else:
                room = 0
            for tp, records in found.items():
                batches[tp] = [*batches.get(tp, ()), *records]
            interception.ingest([record for records in found.values() for record in records], result)
        interception.decide(_now_ms(), result)
        return result

    async def _process(self, consumer: AIOKafkaConsumer, batches: dict[TopicPartition, Records]) -> None:
        started = time.perf_counter()
        async with self._publishing:
            if self.should_stop:
                return  # stopping: the batch is not committed, and is redelivered
            result = await self._trace(consumer, batches)
            for report_id in result.new_reports:
                report = self.interception.revisions[report_id]
                self._awaiting_first_action.setdefault(report_id, report.received_at_ms)
            offsets = {tp: batch[-1].offset + 1 for tp, batch in batches.items()}
            await self._publish(result)
            await self._send_claims()
            stores, logged = self._stores, None
            if stores is not None:
                # Only after the actions are out: a changelog holding the batch while its actions are not
                # would let a restart's store run ahead of the actions read back, and never issue them.
                changes = stores.stage({(tp.topic, tp.partition): offset for tp, offset in offsets.items()})
                logged = await log_changes(
                    self._producer, self._changelog, self.settings.consumer_group.encode(), changes,
                    self.settings.max_action_bytes,
                )  # fmt: skip
            try:
                await consumer.commit(offsets)
                self._committed.update(offsets)
            except (CommitFailedError, IllegalStateError) as error:
                # The group rebalanced under this batch (a worker joined or left while it was traced): as a crash
                # between publishing and committing, it is read again, and its actions come back as the same
                # versions. Its rows are in the changelog, so the local store may take them.
                log.warning("batch not committed (%s): it is read again", error)
            if stores is not None:
                stores.flush(logged)
        records = sum(len(batch) for batch in batches.values())
        for tp, batch in batches.items():
            self.metrics.events_consumed.labels(tp.topic).inc(len(batch))
        self.metrics.batch_size.observe(records)
        self.metrics.batch_seconds.observe(time.perf_counter() - started)

    @mode.Service.task
    async def _escalate(self) -> None:
        """Re-issue actions that missed their SLA; the clock is the wall clock, so this runs on a timer."""
        await self.ready.wait()
        while not self.should_stop:
            await self.sleep(self.settings.escalation_check_interval_s)
            async with self._publishing:
                result = self.interception.tick(_now_ms())  # escalations, expired holds, held-back actions
                if result.actions or result.held or result.tombstones:
                    await self._publish(result)
            for action in result.escalated:
                self.metrics.escalations.labels(action.kind, priority_band(action.priority)).inc()

    async def _send_claims(self) -> None:
        """The claims of the reports taken since the last call, to their resolvers' trail partitions; waits for the
        broker (before the batch that made them commits)."""
        if self._trail_view is None or self._producer is None:
            return
        deliveries = [
            await self._producer.send(self._trail_messages, raw, partition=partition)
            for partition, messages in self._trail_view.take_outbox().items()
            for raw in encode_records(messages)
        ]
        await asyncio.gather(*deliveries)

    async def _publish(self, result: BatchResult) -> None:
        assert self._publisher is not None
        await self._publisher.publish(result, _now_ms())
        delivered_s = time.time()
        metrics = self.metrics
        for rejected in result.rejected:
            metrics.dead_letters.labels(rejected.record.topic, rejected.rejection.reason).inc()
        for action in result.actions:
            metrics.actions_emitted.labels(action.kind, priority_band(action.priority), action.status).inc()
            for report_id in action.report_ids:
                received_ms = self._awaiting_first_action.pop(report_id, None)
                if received_ms is not None:
                    metrics.report_to_first_action.observe(max(0.0, delivered_s - received_ms / 1000))
        metrics.warnings_emitted.inc(len(result.warnings))
        for decision in result.answers:
            metrics.release_decisions.labels(decision.reason).inc()
        if result.held or result.tombstones:
            metrics.set_circuits(self.interception.breaker.open_circuits())
        for ack in result.acks:
            if ack.duplicate:
                continue  # a redelivered ack changed nothing and is not counted twice
            metrics.acks.labels(ack.status).inc()
            if ack.report_to_execution_ms is not None:
                metrics.report_to_first_execution.observe(ack.report_to_execution_ms / 1000)
        if result.acks:
            for (institution, currency), held in self.interception.lifecycle.money_held().items():
                metrics.money_held.labels(institution, currency).set(float(held))
        if result.actions or result.acks:
            metrics.live_freeze_actions.set(len(self.interception.actions.live("freeze")))
            for band, count in self.interception.lifecycle.open_by_band().items():
                metrics.open_actions.labels(band).set(count)

    async def _recover(self) -> None:
        """Rebuild state for the partitions just assigned (start-up, or a standby taking over).

        Actions already issued are read back first (the action book and the lifecycle), then the
        inputs are replayed up to the committed offsets, acks included; nothing is published.
        """
        consumer = self._consumer
        assert consumer is not None
        self._watch.changed.clear()
        self._watch.recovered_once = True
        assigned = set(self._watch.assigned)
        self._close_stores()  # whatever this batch buffered is dropped: it is redelivered
        self._awaiting_first_action.clear()
        self._committed, self._issued = {}, {}
        self._standing_by = not assigned
        if not assigned:
            self.interception = self._new_interception(None)
            log.info("standing by: another worker in group %s holds the input partitions", self.settings.consumer_group)
            self.ready.set()
            return
        started = time.monotonic()
        self.recovery = recovery = Recovery()
        stores = None
        if self.settings.trail_store == "rocksdb" and not self._partitioned:
            stores, recovery.changelog_messages = await self._open_stores()
        self.interception = self._new_interception(stores)
        restored = 0
        for spec, read in (
            (FREEZE_ACTIONS, restore_freeze_order),
            (SUSPENSION_ACTIONS, restore_suspension),
            (VICTIM_WARNINGS, restore_warning),
        ):
            topic = self.settings.topic(spec)
            ends = await high_waters(
                self.kafka, [TopicPartition(topic, p) for p in await partitions_of(self.kafka, topic)]
            )
            restored += await read_partitions(
                self.kafka,
                dict(ends),
                lambda records, read=read: self._restore(records, read),  # type: ignore[misc]
            )
            self._issued.update(ends)  # what this state knows of the actions issued
        await self._restore_releases_and_held()
        # Release requests are not replayed: what they decided is on the topics just read back.
        committed = {
            tp: (await consumer.committed(tp)) or 0 for tp in assigned if not self._is_release_request_topic(tp.topic)
        }
        stored = stores.offsets() if stores is not None else {}
        start_at = {  # the transfers the store already holds are not replayed
            tp: min(stored.get((tp.topic, tp.partition), 0), offset)
            for tp, offset in committed.items()
            if tp.topic == self._bank_topic
        }
        scratch = BatchResult()

        def replay(records: Records) -> None:
            if records:
                recovery.replayed[records[0].topic] += len(records)
                self.interception.ingest(records, scratch)

        await read_partitions(self.kafka, dict(committed), replay, start_at=start_at)
        self.interception.rebuild(now_ms=_now_ms())
        await self._send_claims()  # the replayed reports' claims: latest values, so sending them again is harmless
        for tp in assigned - committed.keys():
            consumer.seek(tp, (await consumer.committed(tp)) or 0)
        for tp, offset in committed.items():
            consumer.seek(tp, offset)
        self._committed = dict(committed)
        recovery.restored_actions, recovery.seconds = restored, time.monotonic() - started
        self.metrics.recovery_seconds.set(recovery.seconds)
        log.info(
            "recovered in %.1f s: %d changelog messages, %d issued actions, input records replayed: %s",
            recovery.seconds, recovery.changelog_messages, restored, dict(recovery.replayed) or "none",
        )  # fmt: skip
        self.ready.set()

    async def _held_elsewhere(self) -> bool:
        """Whether another worker held this one's partitions since it last had them (it paused past its session
        timeout, as a frozen VM does): the group's commits, or the actions issued, moved on without it. Its state
        would then issue versions the other already issued differently."""
        consumer, publisher = self._consumer, self._publisher
        assert consumer is not None and publisher is not None
        for tp, offset in self._committed.items():
            if ((await consumer.committed(tp)) or 0) != offset:
                return True
        known = {tp: max(end, publisher.ends.get(tp, 0)) for tp, end in self._issued.items()}
        ends = await high_waters(self.kafka, known)
        return any(ends[tp] > end for tp, end in known.items())

    async def _open_stores(self) -> tuple[RocksStores, int]:
        """The trail store, brought up to date with its changelog, and how many changelog messages that took."""
        settings = self.settings
        path = settings.data_dir / f"trail-{settings.topic_prefix}{settings.consumer_group}"
        stores = RocksStores.for_history(path, settings.trace.history_retention_ms)
        end = await high_water(self.kafka, TopicPartition(self._changelog, 0))
        if stores.changelog_offset() > end:
            log.warning("the trail store at %s is ahead of its changelog (another cluster?): rebuilding it", path)
            stores.close()
            RocksStores.wipe(path)
            stores = RocksStores.for_history(path, settings.trace.history_retention_ms)
        applied = await catch_up(self.kafka, self._changelog, stores)
        self._stores = stores
        return stores, applied

    @mode.Service.task
    async def _keep_warm(self) -> None:
        """While standing by, follow the trail changelog into this worker's own store: a standby replica.

        A takeover then reads only what the changelog gained since the last poll, not all of it.
        """
        settings = self.settings
        if settings.trail_store != "rocksdb" or not settings.warm_standby or self._partitioned:
            return
        changelog = TopicPartition(self._changelog, 0)
        tail: AIOKafkaConsumer | None = None
        following: RocksStores | None = None  # the store the tail feeds
        try:
            while not self.should_stop:
                if not self._standing_by or self._watch.changed.is_set():
                    if tail is not None and not self._standing_by:
                        await tail.stop()
                        tail = following = None
                    await self.sleep(0.2)
                    continue
                async with self._publishing:  # a takeover's recovery waits for this poll, then closes the store
                    if not self._standing_by or self._watch.changed.is_set():
                        continue
                    if self._stores is None or self._stores is not following:
                        if tail is not None:
                            await tail.stop()
                        if self._stores is None:
                            try:
                                await self._open_stores()
                            except Exception as error:
                                log.warning("standby: cannot keep the trail store warm (%s); it catches up on takeover",
                                            error)  # fmt: skip
                                return
                        following = self._stores
                        assert following is not None
                        tail = self.kafka.consumer(
                            enable_auto_commit=False, auto_offset_reset="earliest",
                            max_partition_fetch_bytes=4 << 20, fetch_max_wait_ms=settings.fetch_max_wait_ms,
                        )  # fmt: skip
                        await tail.start()
                        tail.assign([changelog])
                        tail.seek(changelog, following.changelog_offset())
                    assert tail is not None and following is not None
                    for records in (await tail.getmany(changelog, timeout_ms=200)).values():
                        apply_changelog(following, records)
                    highwater = tail.highwater(changelog)
                    if highwater is not None:
                        self.metrics.standby_changelog_lag.set(max(0, highwater - following.changelog_offset()))
        finally:
            if tail is not None:
                await tail.stop()

    def _close_stores(self) -> None:
        if self._stores is not None:
            self._stores.close()
            self._stores = None

    def _is_release_request_topic(self, topic: str) -> bool:
        return topic == self.settings.topic(RELEASE_REQUESTS) or topic in self.settings.release_request_topics.values()

    async def _restore_releases_and_held(self) -> None:
        """Read back the grants (from the answers) and the actions the circuit breaker held back."""
        held: dict[bytes, tuple[str, bytes]] = {}

        def take_held(records: Records) -> None:
            for record in records:  # compacted: the last record per action id wins, a tombstone removes it
                if record.value is None:
                    held.pop(record.key, None)
                else:
                    headers = dict(record.headers or ())
                    held[record.key] = (headers.get("topic", b"").decode(), record.value)

        def take_answers(records: Records) -> None:
            for record in records:
                grant = restore_grant(record.value) if record.value else None
                if grant is not None:
                    self.interception.restore_grant(grant)

        for spec, take in ((RELEASE_ANSWERS, take_answers), (HELD_ACTIONS, take_held)):
            topic = self.settings.topic(spec)
            partitions = await partitions_of(self.kafka, topic)
            await read_partitions(self.kafka, {TopicPartition(topic, p): None for p in partitions}, take)
        for topic, value in held.values():
            read = restore_freeze_order if topic == FREEZE_ACTIONS.name else restore_suspension
            self.interception.restore_held(read(value))
        self.metrics.set_circuits(self.interception.breaker.open_circuits())

    def _restore(self, records: Records, read: Callable[[bytes], IssuedAction]) -> None:
        for record in records:
            if record.value:
                self.interception.restore(read(record.value))

    @mode.Service.task
    async def _housekeeping(self) -> None:
        """Forget what is past its retention (README, *What expires, and when*) and chart what is left."""
        while not self.should_stop:
            await self.sleep(self.settings.housekeeping_interval_s)
            async with self._publishing:  # between batches, and never while a recovery rebuilds the state
                if self.should_stop:
                    return  # the store may be closed already
                interception = self.interception
                expired = asdict(interception.expire(_now_ms()))
                await self._send_claims()  # the expired reports' claims are withdrawn
                for report_id in [r for r in self._awaiting_first_action if r not in interception.revisions]:
                    del self._awaiting_first_action[report_id]  # expired before any action came of it
            metrics = self.metrics
            for store, count in expired.items():
                metrics.expired.labels(store).inc(count)
            if any(expired.values()):
                log.info("expired %s", ", ".join(f"{count} {store}" for store, count in expired.items()))
            metrics.indexed_transactions.set(len(interception.trail))
            if expired["actions"]:  # the money they held and the actions open change without an ack
                for (institution, currency), held in interception.lifecycle.money_held().items():
                    metrics.money_held.labels(institution, currency).set(float(held))
                for band, count in interception.lifecycle.open_by_band().items():
                    metrics.open_actions.labels(band).set(count)
                metrics.live_freeze_actions.set(len(interception.actions.live("freeze")))

    async def _record_lag(self) -> None:
        """Lag from the high-water mark fetch responses carry (Tansu's ListOffsets is wrong)."""
        consumer = self._consumer
        assert consumer is not None
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            if highwater is not None:
                self.metrics.set_lag(tp.topic, tp.partition, max(0, highwater - await consumer.position(tp)))


def _now_ms() -> int:
    return int(time.time() * 1000)
