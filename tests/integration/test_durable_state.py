"""The trail store on disk, through a real broker: restarts read the store (or its changelog), not the bank feed."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from aiokafka.structs import TopicPartition
from kafka_client import assert_versions_consistent, collect, produce, read_all, wait_consumed
from test_worker_restart import _final, _oracle, _scenario, _start_worker

from pipeline.metrics import Metrics
from pipeline.recovery import high_water
from pipeline.settings import Settings
from pipeline.topics import TRAIL_CHANGELOG
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


@pytest.mark.parametrize("warm", [True, False])
async def test_a_warm_standby_follows_the_changelog_so_its_takeover_reads_only_the_tail(
    settings: Settings, tmp_path: Path, warm: bool
) -> None:
    bootstrap = settings.bootstrap_servers or ""
    events = _scenario(settings)
    half = len(events) // 2
    changelog = TopicPartition(settings.topic(TRAIL_CHANGELOG), 0)
    active = await _run_until_consumed(settings, [], 0)
    standby_settings = settings.with_overrides(data_dir=tmp_path / "standby-disk", warm_standby=warm)
    standby = await _run_until_consumed(standby_settings, [], 0)
    try:
        await produce(bootstrap, events[:half])
        await wait_consumed(active.metrics.registry, half)
        logged = await high_water(bootstrap, changelog)
        assert logged > 0
        if warm:
            await _until(lambda: standby._stores is not None and standby._stores.changelog_offset() == logged)
            assert standby.metrics.registry.get_sample_value("interceptor_standby_changelog_lag") == 0
        await active.stop()
        await produce(bootstrap, events[half:])
        await wait_consumed(standby.metrics.registry, len(events) - half, timeout_s=60)
        recovery = standby.recovery
        assert recovery.changelog_messages == (0 if warm else logged)
        assert recovery.replayed[settings.topic_prefix + "bank-transactions"] == 0
    finally:
        await standby.stop()
        if not active.should_stop:
            await active.stop()
    actions = await read_all(bootstrap, settings.topic_prefix + "freeze-actions")
    assert _final(actions) == _oracle(settings, events)
    assert_versions_consistent(actions)


async def _until(condition: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)
