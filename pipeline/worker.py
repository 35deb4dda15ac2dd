"""The worker's hot loop: consume a batch, trace it, publish what it produced, then commit.

faust's per-event path tops out at a few thousand events/s here, so the high-rate
feed runs in this batch loop on aiokafka, as a service inside the faust worker.

Commit order, per batch (what makes at-least-once true after a crash):
  1. decode, trace and correlate the batch in memory;
  2. send every action (to its shared and its addressee's topic), warning and dead letter;
  3. wait until the broker acknowledged all of them;
  4. commit the batch's offsets;
  5. record metrics.
A crash before step 4 redelivers the batch. Recovery reads back the actions already
issued, then rebuilds the trace, correlation and lifecycle from the inputs up to the
committed offsets, so the redelivered batch reproduces the same actions and issues no
new versions. Escalations come from a timer, under the same lock as the batches, so
versions of one action go out in order.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import mode
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka.structs import TopicPartition

from pipeline.assignment import SingleActiveAssignor
from pipeline.encode import restore_freeze_order, restore_suspension, restore_warning
from pipeline.interception import BatchResult, Interception, IssuedAction
from pipeline.metrics import Metrics
from pipeline.publisher import Publisher
from pipeline.recovery import Records, partitions_of, read_partitions
from pipeline.settings import Settings
from pipeline.topics import FREEZE_ACTIONS, INPUT_TOPICS, SUSPENSION_ACTIONS, VICTIM_WARNINGS
from processors.priority import priority_band

log = logging.getLogger(__name__)


class _AssignmentWatch(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self) -> None:
        self.assigned: set[TopicPartition] = set()
        self.changed = asyncio.Event()
        self.recovered_once = False

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        pass

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        # A standby joining or leaving re-runs the assignment; the state only needs a rebuild
        # when this worker's partitions actually changed.
        if set(assigned) != self.assigned or not self.recovered_once:
            self.assigned = set(assigned)
            self.changed.set()


class InterceptionWorker(mode.Service):
    """Owns the consumer, the producer and the interception state of one worker process."""

    def __init__(self, settings: Settings, bootstrap: str, metrics: Metrics, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.bootstrap = bootstrap
        self.metrics = metrics
        self.interception = Interception(settings)
        self.ready = asyncio.Event()
        self._watch = _AssignmentWatch()
        self._awaiting_first_action: dict[str, int] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._next_lag_at = 0.0
        self._publisher: Publisher | None = None
        self._publishing = asyncio.Lock()  # batch and escalation results go out one at a time, in order

    async def on_start(self) -> None:
        settings = self.settings
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap, acks="all", linger_ms=2, max_batch_size=1 << 20
        )
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=settings.consumer_group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=settings.session_timeout_ms,
            heartbeat_interval_ms=settings.heartbeat_interval_ms,
            partition_assignment_strategy=(SingleActiveAssignor(),),
            max_partition_fetch_bytes=4 << 20,
            fetch_max_bytes=32 << 20,
            fetch_max_wait_ms=settings.fetch_max_wait_ms,
        )
        await self._producer.start()
        self._publisher = Publisher(settings, self.bootstrap, self._producer)
        await self._consumer.start()
        self._consumer.subscribe([settings.topic(t) for t in INPUT_TOPICS], listener=self._watch)

    async def on_stop(self) -> None:
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
            batches = await consumer.getmany(
                timeout_ms=self.settings.batch_timeout_ms, max_records=self.settings.batch_max_records
            )
            if self._watch.changed.is_set():
                continue  # the assignment changed under this batch: recover first, it is read again
            if batches:
                await self._process(batches)
            if time.monotonic() >= self._next_lag_at:
                self._next_lag_at = time.monotonic() + 1.0
                await self._record_lag()

    async def _process(self, batches: dict[TopicPartition, Records]) -> None:
        started = time.perf_counter()
        records = [record for batch in batches.values() for record in batch]
        async with self._publishing:
            result = self.interception.process(records, now_ms=_now_ms())
            for report_id in result.new_reports:
                report = self.interception.revisions[report_id]
                self._awaiting_first_action.setdefault(report_id, report.received_at_ms)
            await self._publish(result)
            assert self._consumer is not None
            await self._consumer.commit({tp: batch[-1].offset + 1 for tp, batch in batches.items()})
        for tp, batch in batches.items():
            self.metrics.events_consumed.labels(tp.topic).inc(len(batch))
        self.metrics.batch_size.observe(len(records))
        self.metrics.batch_seconds.observe(time.perf_counter() - started)

    @mode.Service.task
    async def _escalate(self) -> None:
        """Re-issue actions that missed their SLA; the clock is the wall clock, so this runs on a timer."""
        await self.ready.wait()
        while not self.should_stop:
            await self.sleep(self.settings.escalation_check_interval_s)
            async with self._publishing:
                result = self.interception.escalate(_now_ms())
                if result.escalated:
                    await self._publish(result)
            for action in result.escalated:
                self.metrics.escalations.labels(action.kind, priority_band(action.priority)).inc()

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
        self.interception = Interception(self.settings)
        self._awaiting_first_action.clear()
        if not assigned:
            log.info("standing by: another worker in group %s holds the input partitions", self.settings.consumer_group)
            self.ready.set()
            return
        started = time.monotonic()
        restored = 0
        for spec, read in (
            (FREEZE_ACTIONS, restore_freeze_order),
            (SUSPENSION_ACTIONS, restore_suspension),
            (VICTIM_WARNINGS, restore_warning),
        ):
            topic = self.settings.topic(spec)
            partitions = await partitions_of(self.bootstrap, topic)
            restored += await read_partitions(
                self.bootstrap,
                {TopicPartition(topic, p): None for p in partitions},
                lambda records, read=read: self._restore(records, read),  # type: ignore[misc]
            )
        committed = {tp: (await consumer.committed(tp)) or 0 for tp in assigned}
        scratch = BatchResult()
        replayed = await read_partitions(
            self.bootstrap, dict(committed), lambda records: self.interception.ingest(records, scratch)
        )
        self.interception.rebuild(now_ms=_now_ms())
        for tp, offset in committed.items():
            consumer.seek(tp, offset)
        log.info(
            "recovered %d input records and %d issued actions in %.1f s",
            replayed, restored, time.monotonic() - started,
        )  # fmt: skip
        self.ready.set()

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
                interception = self.interception
                expired = asdict(interception.expire(_now_ms()))
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
