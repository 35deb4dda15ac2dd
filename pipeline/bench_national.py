"""(g) for ``interceptor bench``: traffic with the simulator's shape, at the highest rate the worker sustains.

The benches before it use uniform traffic. Here the messages come from the scam world
(``connectors.scam_world``), scaled up: people paying merchants (hubs with thousands of
counterparties), payroll and the exchange, gangs fanning victims' money in and out, and
reports arriving all the time, each re-tracing what it touches. Two phases, one worker:

1. **throughput**: the first two thirds of the messages are published as fast as this process
   can (the worker runs beside the producer, so this is a lower bound). Messages per second from
   the first one published to the worker's last commit is the rate it sustains;
2. **latency**: the last third is published at 70 % of that rate, in event-time order; report ->
   first freeze is from publishing a report to the worker publishing the first order naming it
   (both record timestamps, so reading the topic late does not count).

Memory is the process's peak resident set (``VmHWM``): the worker, and the producer and world
beside it in the same process.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.structs import TopicPartition

from connectors.scam_world import ScamWorld
from connectors.scenario import load_scenario
from pipeline.bench_retrace import consumed_records, percentile
from pipeline.broker import create_topics
from pipeline.kafka import KafkaConnection
from pipeline.metrics import Metrics
from pipeline.recovery import partitions_of, read_partitions
from pipeline.settings import Settings
from pipeline.topics import FREEZE_ACTIONS, INPUT_TOPICS, TopicSpec, catalogue
from pipeline.worker import InterceptionWorker

NATIONAL_SCALE = 3  # the default scenario's people and traffic, times this
NATIONAL_DAYS = 1.0  # of attacks; half a day more of traffic after them
PACED_SHARE = 0.7  # the latency phase runs at this share of the sustained rate


@dataclass(frozen=True, slots=True)
class NationalFigures:
    messages: int
    per_second: float
    reports_timed: int
    latency_p50_ms: float
    latency_p99_ms: float
    peak_rss_mb: float


def national_messages(scale: float = NATIONAL_SCALE, days: float = NATIONAL_DAYS) -> list[tuple[TopicSpec, bytes]]:
    """The scam world's messages in event-time order, scaled to a national shape.

    Victims report within hours here (median 2 h, at most 12 h), so reports arrive all through
    the run instead of trailing days behind: this measures speed, not effectiveness.
    """
    scenario = load_scenario().scaled(scale, days=days)
    reports = scenario.reports.model_copy(update={"median_delay": timedelta(hours=2), "max_delay": timedelta(hours=12)})
    scenario = scenario.model_copy(update={"tail_days": days / 2, "reports": reports})
    return [(event.topic, event.value) for event in ScamWorld(scenario).events()]


async def measure_national(
    settings: Settings, bootstrap: str, messages: list[tuple[TopicSpec, bytes]]
) -> NationalFigures:
    """Both phases against one in-process worker; the topics under ``settings.topic_prefix`` must exist and be empty."""
    backlog, paced = messages[: len(messages) * 2 // 3], messages[len(messages) * 2 // 3 :]
    topics = [settings.topic(spec) for spec in INPUT_TOPICS]
    producer = KafkaConnection.of(settings, bootstrap).producer(linger_ms=5, max_batch_size=1 << 20)
    await producer.start()
    metrics = Metrics(settings.consumer_group)
    worker = InterceptionWorker(settings, bootstrap, metrics)
    sent_at: dict[str, int] = {}
    try:
        await worker.start()
        await asyncio.wait_for(worker.ready.wait(), timeout=120)
        started = time.perf_counter()
        for first in range(0, len(backlog), 5_000):  # in slices, so the worker's heartbeats get their turn
            chunk = backlog[first : first + 5_000]
            await asyncio.gather(*[await producer.send(settings.topic(spec), value) for spec, value in chunk])
        while sum(consumed_records(metrics, topic) for topic in topics) < len(backlog):
            await asyncio.sleep(0.005)
        per_second = len(backlog) / (time.perf_counter() - started)
        await _publish_paced(settings, producer, paced, per_second * PACED_SHARE, sent_at)
        while sum(consumed_records(metrics, topic) for topic in topics) < len(messages):
            await asyncio.sleep(0.005)
    finally:
        await producer.stop()
        await worker.stop()
    latencies = await _first_freeze_ms(settings, bootstrap, sent_at)
    return NationalFigures(
        messages=len(messages),
        per_second=per_second,
        reports_timed=len(latencies),
        latency_p50_ms=percentile(latencies, 0.5) if latencies else float("nan"),
        latency_p99_ms=percentile(latencies, 0.99) if latencies else float("nan"),
        peak_rss_mb=_peak_rss_mb(),
    )


async def _publish_paced(
    settings: Settings,
    producer: AIOKafkaProducer,
    messages: list[tuple[TopicSpec, bytes]],
    per_second: float,
    sent_at: dict[str, int],
) -> None:
    started = time.perf_counter()
    for index, (spec, value) in enumerate(messages):
        if spec.name == "victim-reports":
            sent_at[orjson.loads(value)["report_id"]] = int(time.time() * 1000)
        await producer.send(settings.topic(spec), value)
        if index % 50 == 0:
            ahead = started + index / per_second - time.perf_counter()
            if ahead > 0:
                await asyncio.sleep(ahead)
    await producer.flush()


async def _first_freeze_ms(settings: Settings, bootstrap: str, sent_at: dict[str, int]) -> list[float]:
    """Per timed report: ms from publishing it to the first freeze order naming it."""
    kafka = KafkaConnection.of(settings, bootstrap)
    first: dict[str, int] = {}

    def take(records: object) -> None:
        for record in records:  # type: ignore[attr-defined]
            for report_id in orjson.loads(record.value)["report_ids"]:
                if report_id in sent_at and (report_id not in first or record.timestamp < first[report_id]):
                    first[report_id] = record.timestamp

    topic = settings.topic(FREEZE_ACTIONS)
    partitions = await partitions_of(kafka, topic)
    await read_partitions(kafka, {TopicPartition(topic, p): None for p in partitions}, take)
    return sorted(float(first[report_id] - sent_at[report_id]) for report_id in first)


def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def national_figures(settings: Settings, bootstrap: str) -> dict[str, float]:
    """(j) for ``interceptor bench``: prints its line and returns its figures."""
    run = uuid.uuid4().hex[:8]
    national = settings.with_overrides(topic_prefix=f"bench-{run}-national.", consumer_group=f"bench-{run}-national")
    await create_topics(KafkaConnection.of(settings, bootstrap), catalogue(0), national.topic_prefix)
    with tempfile.TemporaryDirectory() as workdir:
        figures = await measure_national(
            national.with_overrides(data_dir=Path(workdir)), bootstrap, national_messages()
        )
    print(f"(j) national shape       {figures.per_second:>10,.0f} messages/s sustained ({figures.messages:,} from the "
          f"scam world: hubs, fan-in, reports all along); report -> first freeze p50 {figures.latency_p50_ms:,.0f} ms, "
          f"p99 {figures.latency_p99_ms:,.0f} ms at {PACED_SHARE:.0%} of that; peak RSS {figures.peak_rss_mb:,.0f} MB",
          flush=True)  # fmt: skip
    return {
        "national_messages_per_s": round(figures.per_second),
        "national_latency_p50_ms": round(figures.latency_p50_ms, 1),
        "national_latency_p99_ms": round(figures.latency_p99_ms, 1),
        "national_peak_rss_mb": round(figures.peak_rss_mb),
    }
