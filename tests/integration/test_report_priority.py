"""A report never waits behind a backlog of the bank feed: the worker reads it first, in a short batch."""

from __future__ import annotations

import asyncio

import pytest
from kafka_client import HOUR, account, now, produce, report, transaction

from connectors.synthetic_feed import bulk_bank_transactions
from pipeline.metrics import Metrics
from pipeline.recovery import Records
from pipeline.settings import Settings
from pipeline.worker import InterceptionWorker

pytestmark = pytest.mark.integration

BACKLOG = 20_000
FEED_BATCH, URGENT_BATCH = 2_000, 300


class BatchWatchingWorker(InterceptionWorker):
    """The real worker, noting what each batch carried: (bank records, whether the report was in it)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.batches: list[tuple[int, bool]] = []

    async def _process(self, batches: dict[object, Records]) -> None:  # type: ignore[override]
        records = [record for batch in batches.values() for record in batch]
        bank = sum(1 for record in records if record.topic.endswith("bank-transactions"))
        self.batches.append((bank, any(record.topic.endswith("victim-reports") for record in records)))
        await super()._process(batches)  # type: ignore[arg-type]


async def test_a_report_behind_a_backlog_of_the_feed_is_taken_in_the_first_batches(settings: Settings) -> None:
    settings = settings.with_overrides(batch_max_records=FEED_BATCH, urgent_batch_max_records=URGENT_BATCH)
    bootstrap = settings.bootstrap_servers or ""
    bank, reports = settings.topic_prefix + "bank-transactions", settings.topic_prefix + "victim-reports"
    paid = now() - 2 * HOUR
    payment = transaction("pay-1", account("KBANK", "victim-1"), account("SCB", "mule-1"), "5000", paid)
    backlog = bulk_bank_transactions(BACKLOG, seed=3, start_ms=int(paid.timestamp() * 1000) + 1_000)
    # Published before the worker starts: its first fetch brings every partition's backlog at once.
    await produce(bootstrap, [(bank, payment), *((bank, raw) for raw in backlog)])
    await produce(bootstrap, [(reports, report("R-1", paid + HOUR, [payment]))])

    worker = BatchWatchingWorker(settings, bootstrap, Metrics(settings.consumer_group))
    await worker.start()
    try:
        async with asyncio.timeout(60):
            while not any(has_report for _, has_report in worker.batches):
                await asyncio.sleep(0.01)
    finally:
        await worker.stop()

    index = next(i for i, (_, has_report) in enumerate(worker.batches) if has_report)
    bank_before = sum(count for count, _ in worker.batches[:index])
    # At most the feed batches gathered before the report's fetch came back (one, here); never the backlog.
    assert bank_before <= 2 * FEED_BATCH, worker.batches[: index + 1]
    assert worker.batches[index][0] <= URGENT_BATCH
