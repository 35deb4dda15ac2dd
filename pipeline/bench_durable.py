"""Durable-state figures for ``make bench``: memory and disk per transaction, and restart time against history size.

(g) resident memory added per indexed transaction between two history sizes, with the trail's
    transfers on RocksDB and, side by side, in memory; the store's bytes on disk per transaction;
(h) a real worker process SIGKILLed and restarted on the same data directory, at two history
    sizes: seconds from the restart to its first new freeze action, and what the recovery read.
"""

from __future__ import annotations

import asyncio
import gc
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
from aiokafka.structs import TopicPartition

from connectors.synthetic_feed import bulk_bank_transactions
from pipeline.bench_baselines import fill_topic
from pipeline.bench_retrace import FeedRecord
from pipeline.kafka import KafkaConnection
from pipeline.recovery import high_water
from pipeline.settings import Settings
from pipeline.topics import BANK_TRANSACTIONS, FREEZE_ACTIONS, VICTIM_REPORTS
from pipeline.trail_store import RocksStores
from pipeline.worker_process import kill_worker, settings_env, start_worker
from processors.money_trail import MoneyTrail
from processors.records import Transfer
from schemas.decode import decode_bank_transaction

CHECKPOINT_EVERY = 20_000


@dataclass(frozen=True)
class Footprint:
    store: str
    bytes_per_added_transaction: float  # resident memory, between the two history sizes
    disk_bytes_per_transaction: float | None
    ingest_per_second: float


def measure_footprint(small: int, large: int, store: str, start_ms: int) -> Footprint:
    """Index ``large`` transactions; resident memory is read at ``small`` and at ``large``.

    Run each store in its own process: resident memory never shrinks, so a second run would hide in the first's.
    """
    with tempfile.TemporaryDirectory() as workdir:
        stores = RocksStores(Path(workdir) / "trail", 3 * 24 * 3600_000) if store == "rocksdb" else None
        trail = MoneyTrail(Settings().trace, stores=stores)
        resident: dict[int, int] = {}
        started = time.perf_counter()
        for count, raw in enumerate(bulk_bank_transactions(large, seed=5, start_ms=start_ms), start=1):
            decoded = decode_bank_transaction(raw, 65536)
            assert isinstance(decoded, Transfer)
            trail.add_transaction(decoded)
            if count % CHECKPOINT_EVERY == 0:
                trail.retrace()
                if stores is not None:
                    stores.stage({("bank-transactions", 0): count})
                    stores.flush(count // CHECKPOINT_EVERY)
            if count in (small, large):
                gc.collect()
                resident[count] = _resident_bytes()
        elapsed = time.perf_counter() - started
        disk = None
        if stores is not None:
            stores.db.flush()
            disk = stores.disk_bytes() / large
            stores.close()
    return Footprint(store, (resident[large] - resident[small]) / (large - small), disk, large / elapsed)


def footprint_in_a_fresh_process(small: int, large: int, store: str) -> Footprint:
    code = (
        "import orjson, time; from pipeline.bench_durable import measure_footprint; "
        f"f = measure_footprint({small}, {large}, {store!r}, int(time.time() * 1000) - 7 * 86400_000); "
        "print(orjson.dumps(f).decode())"
    )
    # Our own interpreter, running our own module with numbers we formatted:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)  # noqa: S603
    return Footprint(**orjson.loads(done.stdout.strip().splitlines()[-1]))


def _resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


@dataclass(frozen=True)
class Restart:
    history: int  # bank transactions the killed worker had indexed
    first_action_s: float  # from the restart to the first freeze action of a report sent right then
    replayed_bank_records: int


async def measure_restarts(settings: Settings, bootstrap: str, sizes: tuple[int, ...], workdir: Path) -> list[Restart]:
    """Grow the history to each size, SIGKILL the worker once it has indexed it all, restart it and time it."""
    bank = settings.topic(BANK_TRANSACTIONS)
    worker_env = settings_env(settings.with_overrides(group_instance_id="bench-worker"), bootstrap)
    payloads = bulk_bank_transactions(max(sizes), seed=6, start_ms=int(time.time() * 1000) - 24 * 3600_000)
    results: list[Restart] = []
    filled = 0
    for attempt, size in enumerate(sizes):
        filled += await fill_topic(bootstrap, bank, _take(payloads, size - filled))
        worker = start_worker(workdir / "data", workdir / f"fill-{attempt}.log", worker_env)
        try:
            await _wait_committed(settings, bootstrap, bank, filled)
        finally:
            kill_worker(worker)
        restarted_at = time.perf_counter()
        worker = start_worker(workdir / "data", workdir / f"restart-{attempt}.log", worker_env)
        try:
            first_action = await _first_action_after_restart(settings, bootstrap, f"restart-{attempt}", restarted_at)
        finally:
            kill_worker(worker)
        log = (workdir / f"restart-{attempt}.log").read_text()
        replayed = _replayed_bank_records(log, bank)
        results.append(Restart(size, first_action, replayed))
    return results


def _take(payloads: Iterator[bytes], count: int) -> Iterator[bytes]:
    for _ in range(count):
        yield next(payloads)


async def _wait_committed(settings: Settings, bootstrap: str, topic: str, total: int, timeout_s: float = 900) -> None:
    """Until the group has committed every record now in the topic (at least ``total``: the worker indexed them)."""
    kafka = KafkaConnection.of(settings, bootstrap)
    consumer = kafka.consumer(group_id=settings.consumer_group)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        ends = {tp: await high_water(kafka, tp) for tp in partitions}
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            committed = {tp: (await consumer.committed(tp)) or 0 for tp in ends}
            if all(committed[tp] >= end for tp, end in ends.items()):
                return
            await asyncio.sleep(0.5)
        raise TimeoutError(f"the worker did not index {total} transactions within {timeout_s} s")
    finally:
        await consumer.stop()


async def _first_action_after_restart(settings: Settings, bootstrap: str, name: str, restarted_at: float) -> float:
    """Send a report now (it waits in the topic until the worker is back); seconds from restart to its action."""
    from pipeline.bench import _scam

    kafka = KafkaConnection.of(settings, bootstrap)
    producer = kafka.producer()
    watcher = kafka.consumer(settings.topic(FREEZE_ACTIONS), fetch_max_wait_ms=5)
    await producer.start()
    await watcher.start()
    try:
        payment, report = _scam(f"bench-{name}")
        await producer.send_and_wait(settings.topic(BANK_TRANSACTIONS), payment)
        await producer.send_and_wait(settings.topic(VICTIM_REPORTS), report)
        deadline = time.perf_counter() + 600
        while time.perf_counter() < deadline:
            for records in (await watcher.getmany(timeout_ms=20)).values():
                for record in records:
                    if f"bench-{name}" in orjson.loads(record.value)["report_ids"]:
                        return time.perf_counter() - restarted_at
        raise TimeoutError(f"no action for bench-{name} after the restart")
    finally:
        await watcher.stop()
        await producer.stop()


def _replayed_bank_records(log: str, bank_topic: str) -> int:
    """From the worker's recovery line: how many bank records it read from the input topic."""
    for line in log.splitlines():
        if "input records replayed" in line:
            marker = f"'{bank_topic}': "
            if marker in line:
                return int(line.split(marker, 1)[1].split(",")[0].split("}")[0])
            return 0
    return -1  # no recovery line: the log level hides it


@dataclass(frozen=True)
class StoreMemory:
    per_telecom_event: float
    per_reported_case: float  # the report, its traced accounts, its actions and their lifecycle
    per_account_seen: float
    cases: int


def measure_store_memory(telecom_events: int = 100_000, cases: int = 3_000, accounts: int = 100_000) -> StoreMemory:
    """Python heap per item for what stays in memory beside the trail store (tracemalloc, one process)."""
    from connectors.synthetic_feed import FeedSettings, ScenarioFeed
    from pipeline.interception import Interception

    now_ms = int(time.time() * 1000)

    def heap_per_item(feed: ScenarioFeed, until_ms: int, count_topic: str) -> tuple[float, int]:
        settings = Settings(trail_store="memory")
        interception = Interception(settings)
        events = feed.events_until(until_ms)
        records = [
            FeedRecord(settings.topic_prefix + event.topic, 0, offset, event.at_ms, event.encode())
            for offset, event in enumerate(events)
        ]
        count = sum(1 for event in events if event.topic == count_topic)
        if not count:
            raise RuntimeError(f"the feed sent no {count_topic}: there is nothing to divide the heap by")
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for start in range(0, len(records), 5_000):
            interception.process(records[start : start + 5_000], now_ms=until_ms)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        del interception
        return grown / count, count

    telecom_feed = ScenarioFeed(
        FeedSettings(background_tps=0, cases_per_minute=0, telecom=True, telecom_background_tps=1_000)
    )
    telecom_feed.events_until(now_ms - telecom_events)
    per_event, _ = heap_per_item(telecom_feed, now_ms, "telecom-events")
    case_feed = ScenarioFeed(FeedSettings(background_tps=0, cases_per_minute=600, report_delay_s=1))
    case_feed.events_until(now_ms - cases * 100)
    per_case, reported = heap_per_item(case_feed, now_ms, "victim-reports")

    trail = MoneyTrail(Settings().trace)
    interception = Interception(Settings(trail_store="memory"), trail=trail)
    numbers = [("bank", "KBANK", f"{(n * 387_420_489) % 1_000_000_000:010d}") for n in range(accounts)]
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for account in numbers:  # the trail interns it; the telecom correlation indexes it as a possible proxy
        trail.intern(account)
    interception.telecom.add_accounts(trail.drain_new_accounts())
    per_account = (tracemalloc.get_traced_memory()[0] - before) / accounts
    tracemalloc.stop()
    return StoreMemory(per_event, per_case, per_account, reported)
