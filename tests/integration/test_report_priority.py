"""A report never waits behind a backlog of the bank feed, nor for a long batch of it to end."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition
from kafka_client import HOUR, account, now, produce, report, transaction

from connectors.synthetic_feed import bulk_bank_transactions
from pipeline.interception import BatchResult, InputRecord, Interception
from pipeline.metrics import Metrics
from pipeline.recovery import Records
from pipeline.settings import Settings
from pipeline.trail_store import RocksStores
from pipeline.worker import InterceptionWorker

pytestmark = pytest.mark.integration

BACKLOG = 20_000
FEED_BATCH, URGENT_BATCH = 2_000, 300


class ChunkWatchingWorker(InterceptionWorker):
    """The real worker, noting what it traced in each step: (bank records, whether the report was among them),
    and after which step each batch was committed."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.traced: list[tuple[int, bool]] = []
        self.batch_ends: list[int] = []

    def _new_interception(self, stores: RocksStores | None) -> Interception:
        interception = super()._new_interception(stores)
        ingest = interception.ingest

        def watched(records: Iterable[InputRecord], result: BatchResult) -> None:
            records = list(records)
            bank = sum(1 for record in records if record.topic.endswith("bank-transactions"))
            self.traced.append((bank, any(record.topic.endswith("victim-reports") for record in records)))
            ingest(records, result)

        interception.ingest = watched  # type: ignore[method-assign]
        return interception

    async def _process(self, consumer: AIOKafkaConsumer, batches: dict[TopicPartition, Records]) -> None:
        await super()._process(consumer, batches)
        self.batch_ends.append(len(self.traced))

    def report_step(self) -> int | None:
        return next((step for step, (_, has_report) in enumerate(self.traced) if has_report), None)


async def _backlog(settings: Settings) -> tuple[str, dict[str, object]]:
    """A victim's payment and ``BACKLOG`` transactions after it on the bank feed; the report topic's name."""
    bootstrap = settings.bootstrap_servers or ""
    bank = settings.topic_prefix + "bank-transactions"
    paid = now() - 2 * HOUR
    payment = transaction("pay-1", account("KBANK", "victim-1"), account("SCB", "mule-1"), "5000", paid)
    backlog = bulk_bank_transactions(BACKLOG, seed=3, start_ms=int(paid.timestamp() * 1000) + 1_000)
    await produce(bootstrap, [(bank, payment), *((bank, raw) for raw in backlog)])
    return settings.topic_prefix + "victim-reports", report("R-1", paid + HOUR, [payment])


async def _until(condition: Callable[[], object], timeout_s: float = 60) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.005)


async def test_a_report_behind_a_backlog_of_the_feed_is_taken_in_the_first_batches(settings: Settings) -> None:
    settings = settings.with_overrides(batch_max_records=FEED_BATCH, urgent_batch_max_records=URGENT_BATCH)
    reports, victim_report = await _backlog(settings)
    # Published before the worker starts: its first fetch brings every partition's backlog at once.
    await produce(settings.bootstrap_servers or "", [(reports, victim_report)])

    worker = ChunkWatchingWorker(settings, settings.bootstrap_servers or "", Metrics(settings.consumer_group))
    await worker.start()
    try:
        await _until(lambda: worker.report_step() is not None)
    finally:
        await worker.stop()

    step = worker.report_step()
    assert step is not None
    # At most the feed gathered before the report's fetch came back; never the backlog.
    assert sum(bank for bank, _ in worker.traced[:step]) <= 2 * FEED_BATCH, worker.traced[: step + 1]
    assert worker.traced[step][0] <= URGENT_BATCH


async def test_a_report_arriving_during_a_long_batch_of_the_feed_ends_it(settings: Settings) -> None:
    """The batch would take the whole backlog; the report is traced a few chunks after it came, and goes out."""
    settings = settings.with_overrides(batch_max_records=BACKLOG, urgent_batch_max_records=URGENT_BATCH)
    reports, victim_report = await _backlog(settings)

    worker = ChunkWatchingWorker(settings, settings.bootstrap_servers or "", Metrics(settings.consumer_group))
    await worker.start()
    try:
        await _until(lambda: len(worker.traced) >= 3)
        assert not worker.batch_ends, "the first batch ended before the report could be sent in its middle"
        await produce(settings.bootstrap_servers or "", [(reports, victim_report)])
        sent_at_step = len(worker.traced)
        await _until(lambda: worker.report_step() is not None and worker.batch_ends)
    finally:
        await worker.stop()

    step = worker.report_step()
    assert step is not None
    # The report's step is the batch's last: its action went out with that batch, not after the backlog.
    assert worker.batch_ends[0] == step + 1, (worker.batch_ends, step)
    traced_meanwhile = sum(bank for bank, _ in worker.traced[sent_at_step:step])
    assert traced_meanwhile < BACKLOG // 2, worker.traced
