"""Bench (l): the trail spread over worker processes (``trail_partitions`` > 0), one worker against two.

The same kind of pre-filled bank feed (four partitions, so two workers split it evenly) is read by
one worker process, then by two in one group, each on its own disk. Timed from the first bank
record consumed (the workers' own counters) to the moment the trail's group has committed every
bank record and every trail message (the feed delivered to its resolvers and accounts, and what
they told each other); the commits are polled every 100 ms or so.

The feed is keyed by txn_id as librdkafka places keys (CRC32, the trail's own routing), with as many
partitions as the trail: the trail role's assignor gives each worker the same numbers of the feed and of
the trail, so a transfer meets its resolver in process, and only what the accounts are told
crosses between workers. Unkeyed, the resolver is elsewhere for half the transfers too; the
workers count every trail message they send (``interceptor_trail_messages_sent_total``).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from aiokafka.structs import TopicPartition

from connectors.synthetic_feed import bulk_bank_transactions
from pipeline.bench_baselines import Throughput, fill_topic
from pipeline.broker import create_topics, free_port
from pipeline.kafka import KafkaConnection, connect
from pipeline.metrics import Samples, scrape
from pipeline.recovery import high_waters
from pipeline.settings import Settings
from pipeline.topics import BANK_TRANSACTIONS, TRAIL_MESSAGES, catalogue
from pipeline.worker_process import kill_worker, settings_env, start_worker

TRAIL_PARTITIONS = 4
FEED_PARTITIONS = 4


@dataclass(frozen=True)
class SpreadRun(Throughput):
    crossed_per_transfer: float  # trail messages sent through the broker per bank transfer (all workers)


async def measure_spread_workers(
    settings: Settings,
    bootstrap: str,
    transactions: int,
    workers: int,
    workdir: Path,
    timeout_s: float = 600,
    keyed: bool = True,
) -> SpreadRun:
    """``keyed``: the feed keyed by txn_id, co-partitioned with the trail (see the module's doc); else unkeyed."""
    run = uuid.uuid4().hex[:8]
    spread = settings.with_overrides(
        topic_prefix=f"bench-{run}-spread.", consumer_group=f"bench-{run}-spread", trail_partitions=TRAIL_PARTITIONS
    )
    bank_topic = spread.topic(BANK_TRANSACTIONS)
    start_ms = int(time.time() * 1000) - 3600_000
    await fill_topic(bootstrap, bank_topic, bulk_bank_transactions(transactions, seed=1, start_ms=start_ms),
                     partitions=FEED_PARTITIONS, by_txn_id=keyed)  # fmt: skip
    await create_topics(KafkaConnection.of(settings, bootstrap), catalogue(TRAIL_PARTITIONS), spread.topic_prefix)
    env = settings_env(spread, bootstrap)
    ports = [free_port() for _ in range(workers)]
    processes = [
        start_worker(workdir / f"{run}-{n}", workdir / f"{run}-{n}.log", env, "warning", metrics_port=ports[n])
        for n in range(workers)
    ]
    try:
        deadline = time.monotonic() + timeout_s
        first_at: float | None = None
        while first_at is None:
            if any(_consumed(scrape(port), bank_topic) for port in ports):
                first_at = time.perf_counter()
            elif time.monotonic() > deadline:
                raise TimeoutError(f"{workers} workers did not start consuming within {timeout_s} s")
            await asyncio.sleep(0.02)
        inputs = [TopicPartition(bank_topic, p) for p in range(FEED_PARTITIONS)]
        inputs += [TopicPartition(spread.topic(TRAIL_MESSAGES), p) for p in range(TRAIL_PARTITIONS)]
        watcher = connect(bootstrap).consumer(group_id=f"{spread.consumer_group}-trail", enable_auto_commit=False)
        await watcher.start()  # never subscribes: it only reads the group's commits
        try:
            while time.monotonic() < deadline:
                done = {tp: (await watcher.committed(tp)) or 0 for tp in inputs}
                fed = sum(done[tp] for tp in inputs[:FEED_PARTITIONS])
                if fed >= transactions and done == await high_waters(bootstrap, inputs):  # the queues read out too
                    seconds = time.perf_counter() - first_at
                    crossed = sum(_messages_sent(scrape(port)) for port in ports)
                    return SpreadRun(fed, seconds, crossed / fed)
                await asyncio.sleep(0.05)
        finally:
            await watcher.stop()
        raise TimeoutError(f"{workers} workers did not take {transactions:,} transactions within {timeout_s} s")
    finally:
        for process in processes:
            kill_worker(process)


def _messages_sent(samples: Samples) -> float:
    return sum(value for (name, _), value in samples.items() if name == "interceptor_trail_messages_sent_total")


def _consumed(samples: Samples, topic: str) -> float:
    return samples.get(("interceptor_events_consumed_total", (("topic", topic),)), 0.0)
