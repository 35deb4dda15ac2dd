"""Bench (a) times a worker that indexes the feed, never one that skips it as already indexed."""

from __future__ import annotations

import time

import pytest

from connectors.synthetic_feed import bulk_bank_transactions
from pipeline.bench import _measure_pipeline
from pipeline.bench_baselines import fill_topic
from pipeline.settings import Settings
from pipeline.topics import BANK_TRANSACTIONS
from pipeline.trail_store import RocksStores

pytestmark = pytest.mark.integration

TRANSACTIONS = 3_000


async def test_a_warm_up_in_memory_leaves_every_transaction_to_index_and_a_restored_changelog_is_refused(
    settings: Settings,
) -> None:
    bootstrap = settings.bootstrap_servers or ""
    start_ms = int(time.time() * 1000) - 3600_000
    await fill_topic(bootstrap, settings.topic(BANK_TRANSACTIONS), bulk_bank_transactions(TRANSACTIONS, 1, start_ms))

    warm_up = settings.with_overrides(consumer_group=f"{settings.consumer_group}-warm-up", trail_store="memory")
    await _measure_pipeline(warm_up, bootstrap, TRANSACTIONS)
    measured = await _measure_pipeline(settings, bootstrap, TRANSACTIONS)

    assert measured.messages == TRANSACTIONS
    # Timed from the worker's recovery, the one batch these fit in counts: no Python loop indexes a million a second.
    assert measured.per_second < 1_000_000
    stores = RocksStores(settings.data_dir / f"trail-{settings.topic_prefix}{settings.consumer_group}", 0)
    try:
        assert sum(1 for _ in stores.scan(b"F")) == TRANSACTIONS  # each one indexed by the measured worker
    finally:
        stores.close()
    # A later worker under the same prefix restores that changelog, and would skip what it times.
    again = settings.with_overrides(consumer_group=f"{settings.consumer_group}-again")
    with pytest.raises(RuntimeError, match="restored a trail changelog"):
        await _measure_pipeline(again, bootstrap, TRANSACTIONS)
