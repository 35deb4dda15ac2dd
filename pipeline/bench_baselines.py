"""The two numbers `interceptor bench` puts next to the pipeline's own throughput.

The ceiling is a bare aiokafka consumer that only decodes JSON; the floor is faust
used the way its tutorials read: one Record and one table update per event. Each
measurement times consuming only, from the first record received to the last, so
connecting, creating topics and joining the consumer group stay out of the figure.

The faust baseline runs in a child process (``python -m pipeline.bench_baselines
naive-faust ...``) because a faust worker owns its event loop and signal handlers.
The child writes its result to a JSON file and stops itself by sending itself
SIGTERM, the same shutdown path an operator's ``kill`` takes; the parent waits for
it to exit and kills it if it has not within the timeout.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import sys
import time
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import faust
import orjson
from aiokafka import AIOKafkaConsumer

from pipeline.broker import create_topics
from pipeline.errors import BrokerError, InterceptorError
from pipeline.kafka import connect
from pipeline.topics import BANK_TRANSACTIONS
from processors.money_trail import partition_of

# Tansu holds a new member in the join for half the session timeout; keep both short.
SESSION_TIMEOUT_S = 6.0
HEARTBEAT_INTERVAL_S = 1.0
DEFAULT_TIMEOUT_S = 120.0

_BATCH_BYTES = 1024 * 1024
_MAX_RECORDS = 10_000
_MODULE = "pipeline.bench_baselines"
_NAIVE_FAUST_COMMAND = "naive-faust"
_NAIVE_FAUST_USAGE = f"python -m {_MODULE} {_NAIVE_FAUST_COMMAND} BOOTSTRAP TOPIC EXPECTED PARTITIONS WORKDIR"
_NAIVE_FAUST_RESULT = "naive-faust-result.json"
_NAIVE_FAUST_LOG = "naive-faust.log"
_PROJECT_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True, slots=True)
class Throughput:
    messages: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else float("inf")


async def fill_topic(
    bootstrap: str, topic: str, payloads: Iterable[bytes], partitions: int = 3, by_txn_id: bool = False
) -> int:
    """Create ``topic`` if it is missing and append every payload; returns how many were sent.

    Payloads are dealt round-robin, unkeyed, into one batch per partition, or with ``by_txn_id`` keyed by their
    txn_id into its partition as librdkafka's default partitioner places it (CRC32, as the trail routes a txn_id).
    Each batch is sent when full: the producer's per-message ``send`` is several times slower on Tansu.
    """
    await create_topics(bootstrap, [replace(BANK_TRANSACTIONS, name=topic, partitions=partitions)])
    producer = connect(bootstrap).producer(acks=1, linger_ms=20, max_batch_size=_BATCH_BYTES)
    await producer.start()
    try:
        partition_ids = sorted(await producer.partitions_for(topic))
        open_batches = {partition: producer.create_batch() for partition in partition_ids}
        deliveries = []
        sent = 0
        dealt = itertools.cycle(partition_ids)
        for payload in payloads:
            txn_id: str | None = orjson.loads(payload)["txn_id"] if by_txn_id else None
            key = None if txn_id is None else txn_id.encode()
            partition = next(dealt) if txn_id is None else partition_of(txn_id, len(partition_ids))
            if open_batches[partition].append(key=key, value=payload, timestamp=None) is None:
                deliveries.append(await producer.send_batch(open_batches[partition], topic, partition=partition))
                open_batches[partition] = producer.create_batch()
                open_batches[partition].append(key=key, value=payload, timestamp=None)  # an empty batch takes any one
            sent += 1
        for partition, batch in open_batches.items():
            if batch.record_count():
                deliveries.append(await producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*deliveries)
    finally:
        await producer.stop()
    return sent


async def measure_bare_aiokafka(
    bootstrap: str, topic: str, expected: int, *, timeout: float = DEFAULT_TIMEOUT_S
) -> Throughput:
    """Read ``expected`` messages from the start of ``topic`` with a fresh group, ``orjson.loads`` each, commit."""
    consumer = connect(bootstrap).consumer(
        topic,
        group_id=f"bench-bare-aiokafka-{uuid.uuid4().hex}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=int(SESSION_TIMEOUT_S * 1000),
        heartbeat_interval_ms=int(HEARTBEAT_INTERVAL_S * 1000),
    )
    try:
        async with asyncio.timeout(timeout):
            await consumer.start()  # joins the group: half the session timeout on Tansu
            throughput = await _decode_until(consumer, expected)
            await consumer.commit()
    except TimeoutError:
        raise TimeoutError(f"bare aiokafka did not read {expected} messages from {topic} in {timeout:.0f} s") from None
    finally:
        await consumer.stop()
    return throughput


async def measure_naive_faust(
    bootstrap: str, topic: str, expected: int, workdir: Path, *, timeout: float = DEFAULT_TIMEOUT_S
) -> Throughput:
    """Run a one-agent faust worker in a child process until it has processed ``expected`` messages.

    ``workdir`` receives the worker's data directory, its log and its result file.
    """
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    result_path = workdir / _NAIVE_FAUST_RESULT
    result_path.unlink(missing_ok=True)
    log_path = workdir / _NAIVE_FAUST_LOG
    worker = None
    with log_path.open("wb") as log:
        try:
            async with asyncio.timeout(timeout):
                partitions = await _partition_count(bootstrap, topic)
                worker = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    _MODULE,
                    _NAIVE_FAUST_COMMAND,
                    bootstrap,
                    topic,
                    str(expected),
                    str(partitions),
                    str(workdir),
                    cwd=_PROJECT_ROOT,  # so `-m pipeline...` imports this very package
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=log,
                    stderr=asyncio.subprocess.STDOUT,
                )
                await worker.wait()  # the worker stops itself once it has its figure
        except TimeoutError:
            raise TimeoutError(
                f"naive faust did not read {expected} messages from {topic} in {timeout:.0f} s; see {log_path}"
            ) from None
        finally:
            if worker is not None and worker.returncode is None:
                worker.kill()
                await worker.wait()
    if not result_path.exists():
        raise InterceptorError(f"the naive faust worker exited with {worker.returncode} and no result; see {log_path}")
    return Throughput(**orjson.loads(result_path.read_bytes()))


async def _partition_count(bootstrap: str, topic: str) -> int:
    admin = connect(bootstrap).admin()
    await admin.start()
    try:
        (description,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    if description["error_code"]:
        raise BrokerError(f"cannot read {topic}'s partitions from {bootstrap}: error code {description['error_code']}")
    return len(description["partitions"])


async def _decode_until(consumer: AIOKafkaConsumer, expected: int) -> Throughput:
    consumed = 0
    started: float | None = None
    while consumed < expected:
        batches = await consumer.getmany(timeout_ms=500, max_records=min(_MAX_RECORDS, expected - consumed))
        if batches and started is None:
            started = time.perf_counter()
        for records in batches.values():
            for record in records:
                orjson.loads(record.value)
            consumed += len(records)
    return Throughput(consumed, time.perf_counter() - (started or time.perf_counter()))


class TransactionRecord(faust.Record, serializer="json"):
    """The bank-transaction contract as a faust user would first write it."""

    txn_id: str
    from_account: dict[str, str]
    to_account: dict[str, str]
    amount: str | float
    currency: str
    executed_at: str


def _run_naive_faust(bootstrap: str, topic: str, expected: int, partitions: int, workdir: Path) -> None:
    app_id = f"bench-naive-faust-{uuid.uuid4().hex[:12]}"
    app = faust.App(
        app_id,
        broker=f"kafka://{bootstrap}",
        autodiscover=False,
        web_enabled=False,
        datadir=workdir / f"{app_id}-data",
        store="memory://",
        topic_partitions=partitions,
        broker_session_timeout=SESSION_TIMEOUT_S,
        broker_heartbeat_interval=HEARTBEAT_INTERVAL_S,
    )
    amount_sent = app.Table("amount_sent", default=float)

    @app.agent(app.topic(topic, value_type=TransactionRecord))
    async def tally(transactions: faust.StreamT[TransactionRecord]) -> None:
        processed = 0
        started = 0.0
        async for txn in transactions:
            if not processed:
                started = time.perf_counter()
            sender = f"{txn.from_account['institution']}:{txn.from_account['account']}"
            amount_sent[sender] += float(txn.amount)
            processed += 1
            if processed == expected:
                _write_result(workdir / _NAIVE_FAUST_RESULT, Throughput(processed, time.perf_counter() - started))
                os.kill(os.getpid(), signal.SIGTERM)

    faust.Worker(app, loglevel="WARNING", quiet=True).execute_from_commandline()


def _write_result(path: Path, throughput: Throughput) -> None:
    partial = path.with_suffix(".partial")
    partial.write_bytes(orjson.dumps(asdict(throughput)))
    partial.replace(path)  # the parent never reads half a file


def _main(argv: list[str]) -> None:
    if len(argv) != 6 or argv[0] != _NAIVE_FAUST_COMMAND:
        raise SystemExit(f"usage: {_NAIVE_FAUST_USAGE}")
    _command, bootstrap, topic, expected, partitions, workdir = argv
    _run_naive_faust(bootstrap, topic, int(expected), int(partitions), Path(workdir))


if __name__ == "__main__":
    _main(sys.argv[1:])
