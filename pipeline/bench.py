"""``interceptor bench`` (what ``make bench`` runs): figures, measured side by side in one run.

(a) the pipeline worker ingesting and indexing bank transactions,
(b) a bare aiokafka ``getmany`` + ``orjson.loads`` loop on the same topic (Python's limit here),
(c) a naive faust agent (one event at a time, Record values, a table update per event),
(d) report -> freeze-action latency while 5,000 transactions/s flow in the background, and with the
    feed at (a)'s rate, the worker in its own process,
(e) re-trace cost per batch in a case of 10,000 accounts taking 1,000 new transactions/s,
(f) 3,000 victims' money fanning in to one cash-out account: per batch, in all, and end to end
    (both in ``pipeline.bench_retrace``),
(g) to (i) the trail store: memory and disk per transaction, restart time at two history sizes,
    and the memory of what stays beside it (``pipeline.bench_durable``),
(j) traffic with the scam simulator's shape (hubs, fan-in, reports all along) at the highest
    rate the worker sustains: messages/s, report -> first freeze and peak memory
    (``pipeline.bench_national``),
(k) the trail over partitions without a broker: one process owning them all, against two
    exchanging every message through the wire codec (``pipeline.bench_partitioned``),
(l) the trail spread over worker processes through the broker (``trail_partitions`` = 4): one
    worker against two, on the same kind of feed (``pipeline.bench_spread``),
(m) where (a)'s time per transaction goes without a broker: each step of the worker's batch on a
    RocksDB trail (``pipeline.bench_split``).
The last line printed is one JSON object with the figures. Nothing here asserts a speed.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import math
import statistics
import subprocess
import tempfile
import time
import tracemalloc
import uuid
from dataclasses import dataclass
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from connectors.synthetic_feed import bulk_bank_transactions
from pipeline.app import tune_garbage_collector
from pipeline.bench_baselines import Throughput, fill_topic, measure_bare_aiokafka, measure_naive_faust
from pipeline.bench_durable import footprint_in_a_fresh_process, measure_restarts, measure_store_memory
from pipeline.bench_floor import measure_keyed_floor
from pipeline.bench_national import national_figures
from pipeline.bench_partitioned import measure_partitioned_trail
from pipeline.bench_retrace import (
    FAN_IN_REPORTS_PER_BATCH,
    consumed_records,
    measure_case,
    measure_fan_in,
    measure_fan_in_end_to_end,
    percentile,
)
from pipeline.bench_split import measure_indexing_split
from pipeline.bench_spread import TRAIL_PARTITIONS, measure_spread_workers
from pipeline.broker import EmbeddedBroker, create_topics, free_port
from pipeline.kafka import KafkaConnection
from pipeline.metrics import Metrics, Samples, scrape
from pipeline.settings import Settings
from pipeline.topics import BANK_TRANSACTIONS, FREEZE_ACTIONS, VICTIM_REPORTS, catalogue
from pipeline.worker import InterceptionWorker
from pipeline.worker_process import kill_worker, settings_env, start_worker
from processors.money_trail import MoneyTrail
from schemas.decode import decode_bank_transaction

NAIVE_FAUST_MESSAGES = 20_000
BACKGROUND_TPS = 5_000
LATENCY_SAMPLES = 200  # p99 of 40 was their largest; of 200 it is the second largest
CASE_ACCOUNTS = 10_000
CASE_TPS = 1_000
CASE_BATCHES = 20
FAN_IN_VICTIMS = 3_000
PARTITIONED_TRANSFERS = 200_000


def run_bench(settings: Settings, transactions: int, history: tuple[int, int] = (1_000_000, 3_000_000)) -> None:
    tune_garbage_collector()  # the in-process workers run as a worker process does
    with contextlib.ExitStack() as stack:
        bootstrap = settings.bootstrap_servers
        if not bootstrap:
            bootstrap = stack.enter_context(EmbeddedBroker(port=0)).bootstrap
        figures = asyncio.run(_bench(settings, bootstrap, transactions))
        figures.update(asyncio.run(_bench_durable_state(settings, bootstrap, history)))
        figures.update(asyncio.run(national_figures(settings, bootstrap)))
        print(orjson.dumps(figures).decode(), flush=True)


async def _bench_durable_state(settings: Settings, bootstrap: str, history: tuple[int, int]) -> dict[str, float]:
    small, large = history
    figures: dict[str, float] = {}
    footprints = [footprint_in_a_fresh_process(small, large, store) for store in ("rocksdb", "memory")]
    for footprint in footprints:
        disk = footprint.disk_bytes_per_transaction
        added = footprint.bytes_per_added_transaction
        print(f"(g) trail on {footprint.store:<8} {added:>6,.0f} bytes of RAM per added "
              f"transaction ({small:,} -> {large:,})" + (f", {disk:,.0f} bytes on disk" if disk else "")
              + f"; indexing alone {footprint.ingest_per_second:,.0f} tx/s", flush=True)  # fmt: skip
        figures[f"ram_bytes_per_added_transaction_{footprint.store}"] = round(footprint.bytes_per_added_transaction)
        figures[f"index_only_tps_{footprint.store}"] = round(footprint.ingest_per_second)
    figures["disk_bytes_per_transaction_rocksdb"] = round(footprints[0].disk_bytes_per_transaction or 0)
    for store in ("rocksdb", "memory"):
        run = uuid.uuid4().hex[:8]
        restart_settings = settings.with_overrides(
            topic_prefix=f"bench-{run}-restart.", consumer_group=f"bench-{run}-restart", trail_store=store
        )
        await create_topics(KafkaConnection.of(settings, bootstrap), catalogue(0), restart_settings.topic_prefix)
        sizes = history if store == "rocksdb" else history[:1]  # replaying the feed: the small size makes the point
        with tempfile.TemporaryDirectory() as workdir:
            restarts = await measure_restarts(restart_settings, bootstrap, sizes, Path(workdir))
        for restart in restarts:
            print(f"(h) SIGKILL + restart, {store:<8} {restart.first_action_s:>5.1f} s to the first new action with "
                  f"{restart.history:,} transactions indexed; {restart.replayed_bank_records:,} bank records "
                  "replayed", flush=True)  # fmt: skip
            figures[f"restart_to_first_action_s_{store}_{restart.history}"] = round(restart.first_action_s, 2)
    stores = measure_store_memory()
    print(f"(i) memory beside the trail store  {stores.per_telecom_event:,.0f} bytes per telecom event, "
          f"{stores.per_reported_case / 1000:,.1f} kB per reported case (report, traced accounts, actions), "
          f"{stores.per_account_seen:,.0f} bytes per account seen", flush=True)  # fmt: skip
    figures["ram_bytes_per_telecom_event"] = round(stores.per_telecom_event)
    figures["ram_bytes_per_reported_case"] = round(stores.per_reported_case)
    figures["ram_bytes_per_account_seen"] = round(stores.per_account_seen)
    restart_s = {size: figures[f"restart_to_first_action_s_rocksdb_{size}"] for size in history}
    ratio = restart_s[large] / restart_s[small]
    print(f"    restart time ratio   {ratio:.2f} ({large:,} vs {small:,} transactions, rocksdb)", flush=True)
    figures["restart_ratio_large_to_small_rocksdb"] = round(ratio, 2)
    return figures


async def _bench(settings: Settings, bootstrap: str, transactions: int) -> dict[str, float]:
    kafka = KafkaConnection.of(settings, bootstrap)
    run = uuid.uuid4().hex[:8]
    bench_settings = settings.with_overrides(topic_prefix=f"bench-{run}.", consumer_group=f"bench-{run}")
    await create_topics(kafka, catalogue(0), bench_settings.topic_prefix)
    topic = bench_settings.topic(BANK_TRANSACTIONS)
    start_ms = int(time.time() * 1000) - 3600_000
    print(f"filling {topic} with {transactions} bank transactions ...", flush=True)
    await fill_topic(bootstrap, topic, bulk_bank_transactions(transactions, seed=1, start_ms=start_ms))

    # The warm-up keeps the trail in memory: a rocksdb worker writes the trail changelog, which every later worker
    # under this prefix restores, and (a) would then skip every transaction as one it has already indexed.
    warm_up = bench_settings.with_overrides(consumer_group=f"bench-{run}-warm-up", trail_store="memory")
    warmed = await _measure_pipeline(warm_up, bootstrap, transactions)
    print(f"    warm-up              {warmed.per_second:>10,.0f} tx/s (not a figure)", flush=True)
    pipeline = await _measure_pipeline(bench_settings, bootstrap, transactions)
    print(f"(a) pipeline worker      {pipeline.per_second:>10,.0f} tx/s, trail on rocksdb", flush=True)
    in_memory_settings = bench_settings.with_overrides(consumer_group=f"bench-{run}-memory", trail_store="memory")
    in_memory = await _measure_pipeline(in_memory_settings, bootstrap, transactions)
    print(f"    the same, in memory  {in_memory.per_second:>10,.0f} tx/s", flush=True)
    bare = await measure_bare_aiokafka(bootstrap, topic, transactions)
    print(f"(b) bare aiokafka loop   {bare.per_second:>10,.0f} tx/s", flush=True)
    with tempfile.TemporaryDirectory() as workdir:
        naive = await measure_naive_faust(bootstrap, topic, min(NAIVE_FAUST_MESSAGES, transactions), Path(workdir))
    print(f"(c) naive faust agent    {naive.per_second:>10,.0f} tx/s", flush=True)
    with tempfile.TemporaryDirectory() as workdir:
        floor, shape_only = [
            (await measure_keyed_floor(bootstrap, topic, transactions, Path(workdir), checked=checked)).throughput
            for checked in (True, False)
        ]
    print(f"(n) keyed floor loop     {floor.per_second:>10,.0f} tx/s: decode, re-key by account through the broker, "
          "refuse redeliveries, two RocksDB rows and their changelog, nothing more (pipeline/bench_floor.py)",
          flush=True)  # fmt: skip
    print(f"    the same, shape only {shape_only.per_second:>10,.0f} tx/s: msgspec checks the JSON's shape, "
          "the values go as they came", flush=True)  # fmt: skip

    latency_settings = settings.with_overrides(topic_prefix=f"bench-{run}-lat.", consumer_group=f"bench-{run}-lat")
    await create_topics(kafka, catalogue(0), latency_settings.topic_prefix)
    quiet = await _measure_latency(latency_settings, bootstrap, BACKGROUND_TPS)
    latencies = quiet.latencies
    p50, p99 = statistics.median(latencies), percentile(latencies, 0.99)
    print(f"(d) report -> action     p50 {p50:.1f} ms, p99 {p99:.1f} ms over {len(latencies)} reports "
          f"with {BACKGROUND_TPS:,} tx/s in the background", flush=True)  # fmt: skip
    # The feed at (a)'s rate, the worker in its own process: on two cores the broker and this load generator take
    # CPU from it, so it falls behind the feed there; what is measured is whether reports wait for the feed.
    busy_tps = int(pipeline.per_second) // 50 * 50
    busy_settings = settings.with_overrides(topic_prefix=f"bench-{run}-busy.", consumer_group=f"bench-{run}-busy")
    await create_topics(kafka, catalogue(0), busy_settings.topic_prefix)
    with tempfile.TemporaryDirectory() as workdir:
        busy = await _measure_latency(busy_settings, bootstrap, busy_tps, worker_dir=Path(workdir))
    busy_p50, busy_p99 = statistics.median(busy.latencies), percentile(busy.latencies, 0.99)
    print(f"    at (a)'s rate        p50 {busy_p50:.1f} ms, p99 {busy_p99:.1f} ms over {len(busy.latencies)} reports "
          f"(inf: no action within 30 s); the feed offered at {busy_tps:,} tx/s ran at {busy.feed_tps:,.0f}, the "
          f"worker in its own process ended {busy.feed_lag:,.0f} transactions behind it", flush=True)  # fmt: skip
    memory = _bytes_per_indexed_transaction(min(transactions, 100_000), start_ms)
    print(f"    memory               {memory:,.0f} bytes per indexed transaction (trail in memory, heap)", flush=True)
    print(f"    ratios               a/b {pipeline.per_second / bare.per_second:.2f}, "
          f"a/c {pipeline.per_second / naive.per_second:.1f}, a/n {pipeline.per_second / floor.per_second:.2f}",
          flush=True)  # fmt: skip
    case = measure_case(bench_settings, CASE_ACCOUNTS, CASE_BATCHES, CASE_TPS)
    print(f"(e) re-trace, {case.tainted:,}-account case  p50 {case.batches.p50:.1f} ms, p99 {case.batches.p99:.1f} ms "
          f"per batch of {CASE_TPS:,} new transactions out of the case", flush=True)  # fmt: skip
    print(f"    re-trace alone       p50 {case.retraces.p50:.1f} ms, p99 {case.retraces.p99:.1f} ms; "
          f"{case.holdings_per_batch:,.0f} holdings changed a batch", flush=True)  # fmt: skip
    fan_in = measure_fan_in(bench_settings, FAN_IN_VICTIMS)
    fan_in_settings = settings.with_overrides(topic_prefix=f"bench-{run}-fan.", consumer_group=f"bench-{run}-fan")
    await create_topics(kafka, catalogue(0), fan_in_settings.topic_prefix)
    end_to_end = await measure_fan_in_end_to_end(fan_in_settings, bootstrap, FAN_IN_VICTIMS)
    print(f"(f) fan-in, {fan_in.reports_at_cash_out:,} victims -> 1 p50 {fan_in.batches.p50:.1f} ms, "
          f"p99 {fan_in.batches.p99:.1f} ms per batch of {FAN_IN_REPORTS_PER_BATCH} reports, "
          f"{fan_in.batches.total_s:.2f} s in all", flush=True)  # fmt: skip
    print(f"    fan-in end to end    {end_to_end:.2f} s through the broker and the worker", flush=True)
    spread = measure_partitioned_trail(PARTITIONED_TRANSFERS)
    print(f"(k) trail over {spread.partitions} partitions, no broker: one process {spread.one_process_us:.1f} µs per "
          f"transfer; two exchanging messages {spread.two_processes_us:.1f} µs for both together "
          f"(ratio {spread.two_processes_us / spread.one_process_us:.2f}), {spread.messages_per_transfer:.2f} "
          f"messages and {spread.bytes_per_transfer:.0f} bytes crossing per transfer", flush=True)  # fmt: skip
    figures = {
        "pipeline_tps": round(pipeline.per_second),
        "pipeline_tps_trail_in_memory": round(in_memory.per_second),
        "aiokafka_tps": round(bare.per_second),
        "naive_faust_tps": round(naive.per_second),
        "latency_p50_ms": round(p50, 1),
        "latency_p99_ms": round(p99, 1),
        "latency_busy_tps": busy_tps,
        "latency_busy_p50_ms": round(busy_p50, 1),
        "latency_busy_p99_ms": round(busy_p99, 1),
        "latency_busy_feed_tps": round(busy.feed_tps),
        "latency_busy_feed_lag": round(busy.feed_lag),
        "pipeline_to_aiokafka": round(pipeline.per_second / bare.per_second, 3),
        "pipeline_to_naive_faust": round(pipeline.per_second / naive.per_second, 2),
        "keyed_floor_tps": round(floor.per_second),
        "keyed_floor_shape_only_tps": round(shape_only.per_second),
        "pipeline_to_keyed_floor": round(pipeline.per_second / floor.per_second, 2),
        "bytes_per_indexed_transaction": round(memory),
        "retrace_case_batch_ms_p50": round(case.batches.p50, 1),
        "retrace_case_batch_ms_p99": round(case.batches.p99, 1),
        "retrace_case_retrace_ms_p50": round(case.retraces.p50, 1),
        "retrace_case_retrace_ms_p99": round(case.retraces.p99, 1),
        "fan_in_batch_ms_p50": round(fan_in.batches.p50, 1),
        "fan_in_batch_ms_p99": round(fan_in.batches.p99, 1),
        "fan_in_total_s": round(fan_in.batches.total_s, 2),
        "fan_in_end_to_end_s": round(end_to_end, 2),
        "partitioned_trail_one_process_us": round(spread.one_process_us, 2),
        "partitioned_trail_two_processes_us": round(spread.two_processes_us, 2),
        "partitioned_trail_messages_per_transfer": round(spread.messages_per_transfer, 2),
    }
    with tempfile.TemporaryDirectory() as workdir:
        spread_runs = {
            (workers, keyed): await measure_spread_workers(
                settings, bootstrap, transactions, workers, Path(workdir), keyed=keyed
            )
            for workers, keyed in ((1, True), (2, True), (2, False))
        }
    one, two, unkeyed = spread_runs[(1, True)], spread_runs[(2, True)], spread_runs[(2, False)]
    print(f"(l) trail over {TRAIL_PARTITIONS} partitions, through the broker, the feed keyed by txn_id: 1 worker "
          f"{one.per_second:,.0f} tx/s, 2 workers {two.per_second:,.0f} tx/s together (ratio "
          f"{two.per_second / one.per_second:.2f}), {two.crossed_per_transfer:.2f} trail messages crossing per "
          f"transfer; the feed unkeyed: 2 workers {unkeyed.per_second:,.0f} tx/s, "
          f"{unkeyed.crossed_per_transfer:.2f} crossing; one worker with trail_partitions = 0 is (a)",
          flush=True)  # fmt: skip
    figures["spread_workers_1_tps"] = round(one.per_second)
    figures["spread_workers_2_tps"] = round(two.per_second)
    figures["spread_workers_2_unkeyed_tps"] = round(unkeyed.per_second)
    figures["spread_crossed_per_transfer"] = round(two.crossed_per_transfer, 2)
    figures["spread_crossed_per_transfer_unkeyed"] = round(unkeyed.crossed_per_transfer, 2)
    split = measure_indexing_split(PARTITIONED_TRANSFERS)
    print(f"(m) (a) without a broker, {split.total_us:.1f} µs a transaction ({1e6 / split.total_us:,.0f} tx/s): "
          f"decode and index {split.ingest_us:.1f}, decide {split.decide_us:.1f}, close into rows "
          f"{split.stage_us:.1f}, encode for the changelog {split.encode_us:.1f}, write {split.write_us:.1f}",
          flush=True)  # fmt: skip
    figures["split_total_us"] = round(split.total_us, 1)
    figures["split_ingest_us"] = round(split.ingest_us, 1)
    figures["split_decide_us"] = round(split.decide_us, 1)
    figures["split_stage_us"] = round(split.stage_us, 1)
    figures["split_encode_us"] = round(split.encode_us, 1)
    figures["split_write_us"] = round(split.write_us, 1)
    return figures


async def _measure_pipeline(settings: Settings, bootstrap: str, expected: int) -> Throughput:
    """The real worker service indexing every transaction, timed from the end of its recovery to the last committed.

    The clock starts when the worker has joined and recovered, not at its first counted batch: a batch is counted
    once committed, so that would leave the first batch's work out (all of it, for a feed that fits in one).
    A worker whose store restored a trail changelog would skip the transactions as already indexed: refused.
    """
    metrics = Metrics(settings.consumer_group)
    worker = InterceptionWorker(settings, bootstrap, metrics)
    await worker.start()
    try:
        await asyncio.wait_for(worker.ready.wait(), timeout=60)
        started = time.perf_counter()
        if worker.recovery.changelog_messages:
            raise RuntimeError(f"{settings.consumer_group} restored a trail changelog: it would not index")
        while True:
            consumed = consumed_records(metrics, settings.topic(BANK_TRANSACTIONS))
            if consumed >= expected:
                return Throughput(consumed, time.perf_counter() - started)
            await asyncio.sleep(0.02)  # a scrape collects every metric, in the worker's own event loop
    finally:
        await worker.stop()


@dataclass(frozen=True, slots=True)
class LatencyRun:
    latencies: list[float]  # ms from sending each report to reading its first freeze action
    feed_tps: float  # the background feed's rate as sent
    feed_lag: float  # the worker's lag on the feed when the last report was answered (own process only)


async def _measure_latency(
    settings: Settings, bootstrap: str, background_tps: int, worker_dir: Path | None = None
) -> LatencyRun:
    """Milliseconds from sending a report to reading its first freeze action, under background load.

    With ``worker_dir`` the worker runs in its own process, so the load generator does not share its interpreter.
    """
    kafka = KafkaConnection.of(settings, bootstrap)
    producer = kafka.producer(linger_ms=1)
    watcher = kafka.consumer(settings.topic(FREEZE_ACTIONS), auto_offset_reset="latest", fetch_max_wait_ms=5)
    await producer.start()
    await watcher.start()
    metrics_port = 0  # only a worker process serves one: the bench reads its lag from there
    if worker_dir is None:
        worker = InterceptionWorker(settings, bootstrap, Metrics(settings.consumer_group))
        await worker.start()
    else:
        metrics_port = free_port()
        worker_env = settings_env(settings.with_overrides(group_instance_id="bench-worker"), bootstrap)
        worker_log = worker_dir / "latency.log"
        process = start_worker(worker_dir / "data", worker_log, worker_env, metrics_port=metrics_port)
    feed = _Feed(producer, settings.topic(BANK_TRANSACTIONS), background_tps)
    background: asyncio.Task[None] | None = None
    latencies: list[float] = []
    feed_lag = 0.0
    try:
        if worker_dir is None:
            await asyncio.wait_for(worker.ready.wait(), timeout=60)
        else:
            payment, report = _scam("bench-warm-up")  # answered once the worker has joined and recovered
            await producer.send_and_wait(settings.topic(BANK_TRANSACTIONS), payment)
            await producer.send_and_wait(settings.topic(VICTIM_REPORTS), report)
            await _first_action(
                watcher, "bench-warm-up", time.perf_counter(), timeout_s=120, worker=(process, worker_log)
            )
        background = asyncio.create_task(feed.run())
        await asyncio.sleep(1.0)  # let the background load reach its rate before sampling
        for sample in range(LATENCY_SAMPLES):
            report_id = f"bench-report-{sample}"
            payment, report = _scam(report_id)
            await producer.send_and_wait(settings.topic(BANK_TRANSACTIONS), payment)
            sent = time.perf_counter()
            await producer.send_and_wait(settings.topic(VICTIM_REPORTS), report)
            try:
                latencies.append(await _first_action(watcher, report_id, sent))
            except TimeoutError:
                latencies.append(math.inf)  # the worker fell behind the load: no action within 30 s
                break
        if worker_dir is not None:
            feed_lag = _lag(scrape(metrics_port), settings.topic(BANK_TRANSACTIONS))
    finally:
        if background is not None:
            background.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await background
        await watcher.stop()
        await producer.stop()
        if worker_dir is None:
            await worker.stop()
        else:
            kill_worker(process)
    return LatencyRun(latencies, feed.per_second(), feed_lag)


async def _first_action(
    watcher: AIOKafkaConsumer,
    report_id: str,
    sent: float,
    timeout_s: float = 30,
    worker: tuple[subprocess.Popen[bytes], Path] | None = None,
) -> float:
    """Milliseconds from ``sent`` to reading the report's first freeze action; ``worker``: its process and log."""
    deadline = sent + timeout_s
    while time.perf_counter() < deadline:
        if worker is not None and worker[0].poll() is not None:
            log_tail = worker[1].read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the worker process exited with code {worker[0].returncode}:\n{log_tail}")
        for records in (await watcher.getmany(timeout_ms=5)).values():
            for record in records:
                if report_id in orjson.loads(record.value)["report_ids"]:
                    return (time.perf_counter() - sent) * 1000
    raise TimeoutError(f"no freeze action for {report_id} within {timeout_s} s")


class _Feed:
    """Bank traffic at ``tps``, sent in 20 ms slices, counting what it sent."""

    def __init__(self, producer: AIOKafkaProducer, topic: str, tps: int) -> None:
        self.producer, self.topic, self.tps = producer, topic, tps
        self.sent = 0
        self.started = time.perf_counter()

    async def run(self) -> None:
        payloads = bulk_bank_transactions(10_000_000, seed=2, start_ms=int(time.time() * 1000) - 3600_000)
        per_slice = self.tps // 50
        self.started = next_at = time.perf_counter()
        while True:
            for _ in range(per_slice):
                await self.producer.send(self.topic, next(payloads))
            self.sent += per_slice
            next_at += 0.02
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))

    def per_second(self) -> float:
        return self.sent / max(time.perf_counter() - self.started, 1e-9)


def _lag(samples: Samples, topic: str) -> float:
    """The worker's ``kafka_consumergroup_lag`` on ``topic``, over its partitions."""
    return sum(
        value
        for (name, labels), value in samples.items()
        if name == "kafka_consumergroup_lag" and ("topic", topic) in labels
    )


def _scam(report_id: str) -> tuple[bytes, bytes]:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    victim = {"institution": "KBNK", "account": f"v-{report_id}"}
    mule = {"institution": "SCBK", "account": f"m-{report_id}"}
    payment = {"txn_id": f"pay-{report_id}", "from_account": victim, "to_account": mule,
               "amount": "25000.00", "currency": "THB", "executed_at": now}  # fmt: skip
    report = {"report_id": report_id, "reported_at": now, "victim_id": report_id, "country": "TH",
              "scam_type": "investment",
              "transfers": [{"from_account": victim, "to_account": mule, "amount": "25000.00", "currency": "THB",
                             "sent_at": now, "txn_id": f"pay-{report_id}"}]}  # fmt: skip
    return orjson.dumps(payment), orjson.dumps(report)


def _bytes_per_indexed_transaction(count: int, start_ms: int) -> float:
    payloads = list(bulk_bank_transactions(count, seed=3, start_ms=start_ms))
    trail = MoneyTrail(Settings().trace)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for raw in payloads:
        decoded = decode_bank_transaction(raw, 65536)
        trail.add_transaction(decoded)  # type: ignore[arg-type]
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return (after - before) / count
