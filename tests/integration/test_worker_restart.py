"""Kill the real worker process mid-stream and restart it: nothing lost, nothing traced twice."""

from __future__ import annotations

import itertools
import random
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import orjson
import pytest
from kafka_client import (
    HOUR,
    account,
    assert_versions_consistent,
    collect,
    iso,
    latest_versions,
    now,
    produce,
    report,
    transaction,
)

from pipeline.interception import Interception
from pipeline.settings import Settings
from pipeline.topics import INPUT_TOPICS
from pipeline.worker_process import kill_worker, settings_env, start_worker

pytestmark = pytest.mark.integration


def _scenario(settings: Settings) -> list[tuple[str, dict]]:
    """Background traffic with five scam chains woven in, reports after the money moved."""
    rng = random.Random(7)
    bank, reports = settings.topic_prefix + "bank-transactions", settings.topic_prefix + "victim-reports"
    start = now() - 20 * HOUR
    events: list[tuple[str, dict]] = []
    for i in range(4000):
        source, target = rng.sample(range(2000), 2)
        at = start + HOUR * i / 400
        events.append((bank, transaction(f"bg-{i}", account("BG", str(source)), account("BG", str(target)), 100, at)))
    for case in range(5):
        paid_at = start + HOUR * (1 + case)
        chain = [account("KBANK", f"victim-{case}")] + [account(f"M{h}", f"mule-{case}-{h}") for h in range(4)]
        amount = 50_000 + 10_000 * case
        hops = []
        for hop, (source, target) in enumerate(itertools.pairwise(chain)):
            hops.append(transaction(f"case-{case}-{hop}", source, target, str(amount), paid_at + hop * HOUR / 60))
            amount -= 1_000 * (hop + 1)
        position = rng.randrange(len(events))
        events[position:position] = [(bank, h) for h in hops]
        # Reports land anywhere, before or after their chain: the first one early enough to act before the kill.
        at = 100 if case == 0 else rng.randrange(len(events))
        scammer = f"+6681000000{case}"
        reported = report(f"R-{case}", paid_at + 2 * HOUR, hops[:1])
        events.insert(at, (reports, {**reported, "scammer_phones": [scammer]}))
        call = {"event_id": f"call-{case}", "operator": "AIS", "kind": "call", "msisdn": scammer,
                "occurred_at": iso(paid_at - HOUR), "counterparty_msisdn": f"+6689000000{case}"}  # fmt: skip
        events.insert(rng.randrange(len(events)), (settings.topic_prefix + "telecom-events", call))
    return events


def _oracle(settings: Settings, events: list[tuple[str, dict]]) -> dict[str, tuple]:
    """The pure processors over the same inputs: what the final actions must be."""
    interception = Interception(settings)
    records = [
        SimpleNamespace(topic=topic, partition=0, offset=i, timestamp=0, value=orjson.dumps(message))
        for i, (topic, message) in enumerate(events)
    ]
    result = interception.process(records, now_ms=0)
    assert not result.rejected
    return {o.action_id: (o.status, o.hold, o.priority, o.hop, o.txn_ids) for o in result.orders}


def _final(actions: list[dict]) -> dict[str, tuple]:
    from decimal import Decimal

    return {
        a["action_id"]: (
            a["status"],
            int(Decimal(a["hold_amount"]) * 100),
            a["priority"],
            a["hop"],
            tuple(a["txn_ids"]),
        )
        for a in latest_versions(actions).values()
    }


def _start_worker(settings: Settings, log_path: Path) -> subprocess.Popen[bytes]:
    env = settings_env(settings, settings.bootstrap_servers or "")
    env["INTERCEPTOR_BATCH_MAX_RECORDS"] = "300"  # many small batches, so the kill lands between commits
    return start_worker(settings.data_dir, log_path, env, loglevel="warning")


async def test_worker_killed_mid_stream_resumes_without_loss_or_duplicate_trace(settings: Settings, tmp_path):
    events = _scenario(settings)
    expected = _oracle(settings, events)
    assert len(expected) == 20  # five chains of four mule accounts
    bootstrap = settings.bootstrap_servers or ""
    actions_topic = settings.topic_prefix + "freeze-actions"
    half = len(events) // 2

    first = _start_worker(settings, tmp_path / "worker-1.log")
    try:
        await produce(bootstrap, events[:half])
        await collect(bootstrap, actions_topic, lambda got: len(got) >= 1, timeout_s=60)
    finally:
        kill_worker(first)  # SIGKILL: no graceful shutdown, no final commit

    await produce(bootstrap, events[half:])
    second = _start_worker(settings, tmp_path / "worker-2.log")
    try:
        started = time.monotonic()
        actions = await collect(bootstrap, actions_topic, lambda got: _final(got) == expected, timeout_s=90)
    finally:
        kill_worker(second)
    assert time.monotonic() - started < 90

    assert_versions_consistent(actions)


async def test_crash_after_publishing_before_commit_issues_no_new_versions(settings: Settings):
    """The exact at-least-once window: actions delivered, offsets not committed, then the worker dies."""
    import asyncio

    from kafka_client import read_all, wait_consumed

    from pipeline.metrics import Metrics
    from pipeline.worker import InterceptionWorker

    events = _scenario(settings)
    bootstrap = settings.bootstrap_servers or ""
    actions_topic = settings.topic_prefix + "freeze-actions"

    crashing = InterceptionWorker(settings, bootstrap, Metrics(settings.consumer_group))
    await crashing.start()
    await asyncio.wait_for(crashing.ready.wait(), timeout=30)

    async def die_before_commit(*args: object, **kwargs: object) -> None:
        return None

    crashing._consumer.commit = die_before_commit  # type: ignore[union-attr, method-assign]
    await produce(bootstrap, events)
    await wait_consumed(crashing.metrics.registry, len(events))
    await crashing.stop()
    issued = await read_all(bootstrap, actions_topic)
    assert _final(issued) == _oracle(settings, events)
    others = [settings.topic_prefix + "suspension-actions", settings.topic_prefix + "victim-warnings"]
    issued_elsewhere = [len(await read_all(bootstrap, topic)) for topic in others]
    # One suspension and one warning per case at least; more versions where a report came before its call.
    assert issued_elsewhere[0] >= 5 and issued_elsewhere[1] >= 5

    successor = InterceptionWorker(settings, bootstrap, Metrics(settings.consumer_group))
    await successor.start()
    try:
        await asyncio.wait_for(successor.ready.wait(), timeout=30)
        await wait_consumed(successor.metrics.registry, len(events))  # every input redelivered and reprocessed
    finally:
        await successor.stop()
    assert len(await read_all(bootstrap, actions_topic)) == len(issued)
    assert [len(await read_all(bootstrap, topic)) for topic in others] == issued_elsewhere


async def test_a_standby_worker_takes_over_all_partitions_when_the_active_one_leaves(settings: Settings):
    import asyncio

    from kafka_client import read_all, wait_consumed

    from pipeline.metrics import Metrics
    from pipeline.worker import InterceptionWorker

    bootstrap = settings.bootstrap_servers or ""
    events = _scenario(settings)
    half = len(events) // 2
    active = InterceptionWorker(settings, bootstrap, Metrics(settings.consumer_group))
    standby_settings = settings.with_overrides(data_dir=settings.data_dir / "standby")  # a worker's disk is its own
    standby = InterceptionWorker(standby_settings, bootstrap, Metrics(settings.consumer_group))
    await active.start()
    await asyncio.wait_for(active.ready.wait(), timeout=30)
    await standby.start()
    try:
        await asyncio.wait_for(standby.ready.wait(), timeout=30)  # it has joined the group, with nothing assigned
        await produce(bootstrap, events[:half])
        await wait_consumed(active.metrics.registry, half)
        # Every input topic's partitions, and each requester's own release-requests topic (one partition each).
        every_input_partition = sum(topic.partitions for topic in INPUT_TOPICS) + len(settings.release_request_topics)
        assert active._consumer and len(active._consumer.assignment()) == every_input_partition
        assert standby._consumer and standby._consumer.assignment() == set()
        await active.stop()
        await produce(bootstrap, events[half:])
        await wait_consumed(standby.metrics.registry, len(events) - half, timeout_s=60)
    finally:
        await standby.stop()
        if not active.should_stop:
            await active.stop()
    assert _final(await read_all(bootstrap, settings.topic_prefix + "freeze-actions")) == _oracle(settings, events)


async def test_a_worker_given_its_partitions_again_tells_whether_another_held_them_meanwhile(settings: Settings):
    """After a pause past its session timeout a worker may get the same partitions back, and its state is then
    stale if another worker issued actions or committed its inputs in between: it must tell, and rebuild. Its own
    actions and commits are not another's."""
    import asyncio

    from kafka_client import wait_consumed

    from pipeline.kafka import connect
    from pipeline.metrics import Metrics
    from pipeline.worker import InterceptionWorker

    bootstrap = settings.bootstrap_servers or ""
    events = _scenario(settings)
    worker = InterceptionWorker(settings, bootstrap, Metrics(settings.consumer_group))
    await worker.start()
    try:
        await asyncio.wait_for(worker.ready.wait(), timeout=30)
        await produce(bootstrap, events)
        await wait_consumed(worker.metrics.registry, len(events))
        assert not await worker._held_elsewhere()  # its own actions and commits, all of them

        producer = connect(bootstrap).producer()  # another worker's version of an action
        await producer.start()
        try:
            await producer.send_and_wait(settings.topic_prefix + "freeze-actions", b"{}")
        finally:
            await producer.stop()
        assert await worker._held_elsewhere()
    finally:
        await worker.stop()
