"""The trail store on disk, through a real broker: restarts read the store (or its changelog), not the bank feed."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

import pytest
from kafka_client import assert_versions_consistent, collect, produce, read_all, wait_consumed
from test_worker_restart import _final, _oracle, _scenario, _start_worker

from pipeline.metrics import Metrics
from pipeline.settings import Settings
from pipeline.worker import InterceptionWorker
from pipeline.worker_process import kill_worker

pytestmark = pytest.mark.integration


async def _run_until_consumed(settings: Settings, events: list, expected_consumed: int) -> InterceptionWorker:
    worker = InterceptionWorker(settings, settings.bootstrap_servers or "", Metrics(settings.consumer_group))
    await worker.start()
    await asyncio.wait_for(worker.ready.wait(), timeout=30)
    if events:
        await produce(settings.bootstrap_servers or "", events)
    await wait_consumed(worker.metrics.registry, expected_consumed, timeout_s=60)
    return worker


@pytest.mark.parametrize("disk", ["kept", "lost"])
async def test_a_restart_rebuilds_from_the_store_or_its_changelog_never_from_the_bank_feed(
    settings: Settings, tmp_path: Path, disk: str
) -> None:
    events = _scenario(settings)
    half = len(events) // 2
    bank = settings.topic_prefix + "bank-transactions"
    reports = settings.topic_prefix + "victim-reports"

    first = await _run_until_consumed(settings, events[:half], half)
    await first.stop()
    assert first.recovery.replayed[bank] == 0  # a new store, an empty topic: nothing to read

    successor_settings = settings if disk == "kept" else settings.with_overrides(data_dir=tmp_path / "new-disk")
    successor = await _run_until_consumed(successor_settings, events[half:], len(events) - half)
    try:
        recovery = successor.recovery
        assert recovery.replayed[bank] == 0, "the bank feed was replayed"
        assert recovery.replayed[reports] == sum(1 for topic, _ in events[:half] if topic == reports)
        if disk == "lost":
            assert recovery.changelog_messages > 0  # the store came back from its changelog
        else:
            assert recovery.changelog_messages == 0  # the local store was already up to date
        assert len(successor.interception.trail) == sum(1 for topic, _ in events if topic == bank)
    finally:
        await successor.stop()
    actions = await read_all(settings.bootstrap_servers or "", settings.topic_prefix + "freeze-actions")
    assert _final(actions) == _oracle(settings, events)
    assert_versions_consistent(actions)


async def test_a_worker_killed_every_few_seconds_ends_with_the_right_holds(settings: Settings, tmp_path: Path) -> None:
    """A kill storm: SIGKILL the worker again and again while reports, transfers and telecom events flow."""
    events = _scenario(settings)
    expected = _oracle(settings, events)
    bootstrap = settings.bootstrap_servers or ""
    actions_topic = settings.topic_prefix + "freeze-actions"
    rng = random.Random(11)
    chunks = [events[i : i + len(events) // 6 + 1] for i in range(0, len(events), len(events) // 6 + 1)]

    for kill, chunk in enumerate(chunks):
        worker = _start_worker(settings, tmp_path / f"worker-{kill}.log")
        try:
            await produce(bootstrap, chunk)
            # Not a wait for a result: the kill lands wherever the worker is (joining, recovering, busy).
            await asyncio.sleep(rng.uniform(2.0, 5.0))
        finally:
            kill_worker(worker)

    last = _start_worker(settings, tmp_path / "worker-last.log")
    try:
        started = time.monotonic()
        actions = await collect(bootstrap, actions_topic, lambda got: _final(got) == expected, timeout_s=120)
    finally:
        kill_worker(last)
    assert time.monotonic() - started < 120
    assert_versions_consistent(actions)
