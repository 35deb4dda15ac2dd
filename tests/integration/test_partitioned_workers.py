"""Two worker processes spreading the trail's partitions (``trail_partitions`` > 0), through a real broker.

Each test runs real ``interceptor worker`` processes and SIGKILLs them; the holds at the end
must be the pure processors' (the reference the partitioned engine is held to), and no action
version may contradict another.
"""

from __future__ import annotations

import asyncio
import random
import subprocess
import time
from pathlib import Path

import pytest
from aiokafka.structs import TopicPartition
from kafka_client import assert_versions_consistent, collect, holds_by_account, latest_versions, produce
from test_interception_e2e import (
    AFTER_WINDOW,
    BAD_INPUT,
    BEFORE_THEFT,
    EXPECTED_HOLDS,
    HOP_1,
    HOP_2,
    PAYMENT,
    REPORT,
)
from test_worker_restart import _final, _oracle, _scenario

from pipeline.bench_spread import measure_spread_workers
from pipeline.broker import create_topics, free_port
from pipeline.metrics import Metrics, scrape
from pipeline.recovery import high_waters
from pipeline.settings import Settings
from pipeline.topics import catalogue
from pipeline.trail_store import RocksStores
from pipeline.trail_worker import TrailWorker
from pipeline.worker import InterceptionWorker
from pipeline.worker_process import kill_worker, settings_env, start_worker

pytestmark = pytest.mark.integration

TRAIL_PARTITIONS = 4


@pytest.fixture
async def partitioned(settings: Settings) -> Settings:
    spread = settings.with_overrides(trail_partitions=TRAIL_PARTITIONS)
    await create_topics(spread.bootstrap_servers or "", catalogue(TRAIL_PARTITIONS), spread.topic_prefix)
    return spread


def _start(settings: Settings, name: str, directory: Path, metrics_port: int | None = None) -> subprocess.Popen[bytes]:
    """A worker process on its own disk (``directory / name``), as a second machine would be."""
    env = settings_env(settings, settings.bootstrap_servers or "")
    env["INTERCEPTOR_BATCH_MAX_RECORDS"] = "300"  # many small batches, so a kill lands between commits
    # A killed member holds its partitions for a session timeout: a short one lets the roles move within a storm.
    env["INTERCEPTOR_SESSION_TIMEOUT_MS"], env["INTERCEPTOR_HEARTBEAT_INTERVAL_MS"] = "3000", "500"
    data_dir = directory / name
    log_path = directory / f"{name}-{time.monotonic_ns()}.log"
    return start_worker(data_dir, log_path, env, loglevel="info", metrics_port=metrics_port)


def _consumed(port: int, topic: str) -> float:
    return scrape(port).get(("interceptor_events_consumed_total", (("topic", topic),)), 0.0)


def _partitions_owned(port: int) -> float:
    return scrape(port).get(("interceptor_trail_partitions_owned", ()), 0.0)


async def _until_owned(ports: list[int], owned: list[int], deadline: float, failure: str) -> None:
    """Wait until the workers serving ``ports`` own these many trail partitions each."""
    while [_partitions_owned(port) for port in ports] != owned:
        assert time.monotonic() < deadline, failure
        await asyncio.sleep(0.2)


@pytest.mark.parametrize("killed", ["deciding", "tracing only"])
async def test_two_workers_share_the_trail_and_one_killed_mid_stream_loses_nothing(
    partitioned: Settings, tmp_path: Path, killed: str
) -> None:
    """Two workers both consume; SIGKILL either the one deciding the actions (both its roles move) or the other
    (only its trail partitions move), once the first half of the stream is in: the holds end right."""
    settings = partitioned
    events = _scenario(settings)
    expected = _oracle(settings, events)
    bootstrap = settings.bootstrap_servers or ""
    actions_topic = settings.topic_prefix + "freeze-actions"
    bank_topic, reports_topic = settings.topic_prefix + "bank-transactions", settings.topic_prefix + "victim-reports"
    ports = [free_port(), free_port()]
    workers = [_start(settings, f"worker-{n}", tmp_path, ports[n]) for n in range(2)]
    try:
        half = len(events) // 2
        await produce(bootstrap, events[:half])
        first_half_bank = sum(1 for topic, _ in events[:half] if topic == bank_topic)
        deadline = time.monotonic() + 60
        while sum(_consumed(port, bank_topic) for port in ports) < first_half_bank or not any(
            _consumed(port, reports_topic) > 0 for port in ports
        ):
            assert time.monotonic() < deadline, "the first half should be consumed"
            await asyncio.sleep(0.2)
        assert all(_consumed(port, bank_topic) > 0 for port in ports), "both workers should consume the bank feed"
        assert all(_partitions_owned(port) > 0 for port in ports), "both workers should own trail partitions"

        deciding = 0 if _consumed(ports[0], reports_topic) > 0 else 1
        victim = deciding if killed == "deciding" else 1 - deciding
        kill_worker(workers[victim])  # the survivor adopts its trail partitions from their changelogs
        await produce(bootstrap, events[half:])
        actions = await collect(bootstrap, actions_topic, lambda got: _final(got) == expected, timeout_s=120)
        survivor = ports[1 - victim]
        assert _partitions_owned(survivor) == TRAIL_PARTITIONS
        assert _consumed(survivor, reports_topic) > 0
    finally:
        for worker in workers:
            kill_worker(worker)
    assert_versions_consistent(actions)


async def test_two_workers_killed_again_and_again_end_with_the_right_holds(
    partitioned: Settings, tmp_path: Path
) -> None:
    """A kill storm: SIGKILL one of two workers every few seconds, and restart it on its own disk, while
    reports, transfers and telecom events flow."""
    settings = partitioned
    events = _scenario(settings)
    expected = _oracle(settings, events)
    bootstrap = settings.bootstrap_servers or ""
    actions_topic = settings.topic_prefix + "freeze-actions"
    rng = random.Random(5)
    size = len(events) // 6 + 1
    chunks = [events[i : i + size] for i in range(0, len(events), size)]
    workers = [_start(settings, f"worker-{n}", tmp_path) for n in range(2)]
    try:
        for kill, chunk in enumerate(chunks):
            await produce(bootstrap, chunk)
            # Not a wait for a result: the kill lands wherever the worker is (joining, adopting, busy).
            await asyncio.sleep(rng.uniform(2.0, 5.0))
            victim = kill % 2
            kill_worker(workers[victim])
            workers[victim] = _start(settings, f"worker-{victim}", tmp_path)
        actions = await collect(bootstrap, actions_topic, lambda got: _final(got) == expected, timeout_s=150)
    finally:
        for worker in workers:
            kill_worker(worker)
    assert_versions_consistent(actions)


def _restored_by_partition(port: int) -> dict[int, float]:
    """Changelog messages a worker read adopting each trail partition it ever adopted."""
    name = "interceptor_trail_changelog_restored_messages_total"
    return {int(dict(labels)["partition"]): value for (sample, labels), value in scrape(port).items() if sample == name}


async def test_a_worker_keeps_warm_copies_of_the_others_partitions_and_takes_them_over_from_the_tail(
    partitioned: Settings, tmp_path: Path
) -> None:
    """Standby replicas (``warm_standby``, on by default): the second worker follows the changelogs of the first
    one's trail partitions into its own store, so when the first is killed it reads only what they gained since,
    not their whole changelogs; and the holds end right."""
    settings = partitioned
    events = _scenario(settings)
    expected = _oracle(settings, events)
    bootstrap = settings.bootstrap_servers or ""
    bank_topic = settings.topic_prefix + "bank-transactions"
    ports = [free_port(), free_port()]
    workers = [_start(settings, "worker-0", tmp_path, ports[0])]
    try:
        await produce(bootstrap, events)
        bank_events = sum(1 for topic, _ in events if topic == bank_topic)
        deadline = time.monotonic() + 60
        while _consumed(ports[0], bank_topic) < bank_events:
            assert time.monotonic() < deadline, "the first worker should index the whole feed"
            await asyncio.sleep(0.2)
        workers.append(_start(settings, "worker-1", tmp_path, ports[1]))

        def caught_up() -> bool:
            second = scrape(ports[1])
            owned = second.get(("interceptor_trail_partitions_owned", ()), 0.0)
            following = second.get(("interceptor_trail_standby_partitions", ()), 0.0)
            # Following starts with the lag at the copies' whole backlog: 0 means they have caught up.
            lag = second.get(("interceptor_standby_changelog_lag", ()), -1.0)
            return 0 < owned < TRAIL_PARTITIONS and following == TRAIL_PARTITIONS - owned and lag == 0

        deadline = time.monotonic() + 60
        while not caught_up() or _partitions_owned(ports[0]) + _partitions_owned(ports[1]) != TRAIL_PARTITIONS:
            assert time.monotonic() < deadline, "the second worker should own some partitions and copy the rest"
            await asyncio.sleep(0.2)
        adopted_before = _restored_by_partition(ports[1])
        theirs = set(range(TRAIL_PARTITIONS)) - adopted_before.keys()
        changelogs = [TopicPartition(settings.topic_prefix + "trail-partition-changelog", p) for p in theirs]
        sizes = {tp.partition: end for tp, end in (await high_waters(bootstrap, changelogs)).items()}

        kill_worker(workers[0])
        deadline = time.monotonic() + 60
        while _partitions_owned(ports[1]) != TRAIL_PARTITIONS:
            assert time.monotonic() < deadline, "the second worker should take the first one's partitions over"
            await asyncio.sleep(0.2)
        taken_over = {p: n for p, n in _restored_by_partition(ports[1]).items() if p not in adopted_before}
        actions = await collect(
            bootstrap, settings.topic_prefix + "freeze-actions", lambda got: _final(got) == expected, timeout_s=120
        )
    finally:
        for worker in workers:
            kill_worker(worker)
    assert taken_over.keys() == theirs
    assert all(size > 1 for size in sizes.values()), f"the first worker should have logged its partitions: {sizes}"
    # Without the copies each would be read whole: at least as many messages as its changelog held at the kill.
    assert all(read < sizes[p] for p, read in taken_over.items()), (taken_over, sizes)
    assert_versions_consistent(actions)


async def test_each_partition_is_copied_by_as_many_other_workers_as_standby_replicas(
    partitioned: Settings, tmp_path: Path
) -> None:
    """Three workers, one standby replica (the default): the group's leader names one other worker to copy each
    trail partition, where every worker not owning it used to copy it (twice as many copies here)."""
    ports = [free_port() for _ in range(3)]
    workers = [_start(partitioned, f"worker-{n}", tmp_path, ports[n]) for n in range(3)]
    try:
        deadline = time.monotonic() + 60
        while True:
            samples = [scrape(port) for port in ports]
            owned = [sample.get(("interceptor_trail_partitions_owned", ()), 0.0) for sample in samples]
            copied = [sample.get(("interceptor_trail_standby_partitions", ()), 0.0) for sample in samples]
            if sum(owned) == TRAIL_PARTITIONS and all(owned) and sum(copied) == TRAIL_PARTITIONS:
                break
            assert time.monotonic() < deadline, f"owned {owned}, copied {copied}"
            await asyncio.sleep(0.2)
    finally:
        for worker in workers:
            kill_worker(worker)


async def test_a_partition_that_stays_with_its_worker_through_a_rebalance_is_not_adopted_again(
    partitioned: Settings, tmp_path: Path
) -> None:
    """A second worker joins: the first keeps half of its partitions (its copies are the freshest) and goes on
    with them as they were, with no second adoption (no RESET, no pause); the second adopts the other half. The
    holds end as the oracle's, the stream flowing through the rebalance."""
    settings = partitioned
    events = _scenario(settings)
    expected = _oracle(settings, events)
    bootstrap = settings.bootstrap_servers or ""
    ports = [free_port(), free_port()]
    workers = [_start(settings, "worker-0", tmp_path, ports[0])]
    try:
        deadline = time.monotonic() + 60
        await _until_owned(ports[:1], [TRAIL_PARTITIONS], deadline, "the first worker should own every partition")
        half = len(events) // 2
        await produce(bootstrap, events[:half])
        workers.append(_start(settings, "worker-1", tmp_path, ports[1]))
        await produce(bootstrap, events[half:])
        await _until_owned(ports, [TRAIL_PARTITIONS // 2] * 2, deadline, "the second worker should take half")
        actions = await collect(
            bootstrap, settings.topic_prefix + "freeze-actions", lambda got: _final(got) == expected, timeout_s=120
        )
        adoptions = [scrape(port).get(("interceptor_trail_adoptions_total", ()), 0.0) for port in ports]
    finally:
        for worker in workers:
            kill_worker(worker)
    assert adoptions == [TRAIL_PARTITIONS, TRAIL_PARTITIONS // 2]
    assert_versions_consistent(actions)


async def test_a_worker_drops_its_copies_of_partitions_it_gave_away_when_no_standby_is_wanted(
    partitioned: Settings, tmp_path: Path
) -> None:
    """No standby replicas: the first worker owned every partition, then gave half to the second; it keeps no copy
    of that half on its disk (the changelog holds them)."""
    settings = partitioned.with_overrides(standby_replicas=0)
    ports = [free_port(), free_port()]
    workers = [_start(settings, "worker-0", tmp_path, ports[0])]
    try:
        deadline = time.monotonic() + 60
        await _until_owned(ports[:1], [TRAIL_PARTITIONS], deadline, "the first worker should own every partition")
        workers.append(_start(settings, "worker-1", tmp_path, ports[1]))
        await _until_owned(ports, [TRAIL_PARTITIONS // 2] * 2, deadline, "the second worker should take half")
        while scrape(ports[0]).get(("interceptor_trail_local_copies", ()), -1.0) != TRAIL_PARTITIONS // 2:
            assert time.monotonic() < deadline, "the first worker's standby loop should drop what it gave away"
            await asyncio.sleep(0.2)
    finally:
        for worker in workers:
            kill_worker(worker)
    path = tmp_path / "worker-0" / f"trail-partitions-{settings.topic_prefix}{settings.consumer_group}"
    stores = RocksStores(path, 0)
    try:
        copies = [p for p in range(TRAIL_PARTITIONS) if stores.partition_changelog_offset(p) is not None]
    finally:
        stores.close()
    assert len(copies) == TRAIL_PARTITIONS // 2, copies


@pytest.mark.parametrize("workers", [1, 2])
async def test_the_spread_bench_times_the_whole_feed_through_the_workers(
    settings: Settings, tmp_path: Path, workers: int
) -> None:
    measured = await measure_spread_workers(settings, settings.bootstrap_servers or "", 3_000, workers, tmp_path)
    assert measured.messages == 3_000  # committed by the trail's group, its queues read to their ends
    assert measured.seconds > 0


async def test_a_feed_keyed_by_txn_id_meets_its_resolvers_in_process(settings: Settings, tmp_path: Path) -> None:
    """Three workers over four partitions, where only the range assignor gives each worker the same partition
    numbers of the feed and of the trail (round robin deals them out of step)."""
    bootstrap = settings.bootstrap_servers or ""
    keyed = await measure_spread_workers(settings, bootstrap, 3_000, 3, tmp_path, keyed=True)
    unkeyed = await measure_spread_workers(settings, bootstrap, 3_000, 3, tmp_path, keyed=False)
    assert keyed.messages == unkeyed.messages == 3_000
    # Each transfer tells its two accounts, whoever owns them; unkeyed, two thirds also reach a resolver elsewhere.
    assert keyed.crossed_per_transfer < unkeyed.crossed_per_transfer - 0.4, (keyed, unkeyed)


async def test_with_the_trail_spread_bad_input_is_dead_lettered_and_the_chain_still_frozen(
    partitioned: Settings,
) -> None:
    """The partner's-eye scenario of test_interception_e2e, with both roles of a worker (trail_partitions > 0)
    in this process: bad bank records (read by the trail role now) and an unreadable trail message become
    dead letters with their reasons, and the chain is frozen as by the single worker."""
    settings = partitioned
    bootstrap = settings.bootstrap_servers or ""
    bank, reports, messages = (settings.topic_prefix + name for name in ("bank-transactions", "victim-reports",
                                                                          "trail-messages"))  # fmt: skip
    metrics = Metrics(settings.consumer_group)
    roles = [InterceptionWorker(settings, bootstrap, metrics), TrailWorker(settings, bootstrap, metrics)]
    for role in roles:
        await role.start()
    try:
        for role in roles:
            await asyncio.wait_for(role.ready.wait(), timeout=30)
        bad = [(bank, raw) for raw in BAD_INPUT]
        await produce(bootstrap, [(bank, BEFORE_THEFT), bad[0], (bank, PAYMENT), bad[1], (bank, HOP_1), bad[2]])
        await produce(bootstrap, [(reports, REPORT), (messages, b"\x00 not a trail message")])
        await produce(bootstrap, [bad[3], (bank, HOP_2), bad[4], (bank, AFTER_WINDOW)])
        actions = await collect(
            bootstrap, settings.topic_prefix + "freeze-actions", lambda got: holds_by_account(got) == EXPECTED_HOLDS
        )
        letters = await collect(
            bootstrap, settings.topic_prefix + "dead-letters", lambda got: len(got) >= len(BAD_INPUT) + 1
        )
    finally:
        for role in reversed(roles):
            await role.stop()
    assert all(a["report_ids"] == ["R-1"] for a in latest_versions(actions).values())
    assert sorted(letter["reason"] for letter in letters) == sorted([*BAD_INPUT.values(), "invalid_trail_message"])
    assert all(letter["error"] for letter in letters)
    unreadable = next(letter for letter in letters if letter["reason"] == "invalid_trail_message")
    assert unreadable["source_topic"] == messages and "unreadable" in unreadable["error"]
