"""Bench (n): the least any worker keeping the trail's state pays per transaction, in a hand-written loop.

The issue's orientation figures (66-73k msg/s "keeping per-account lists") came from a loop of
this shape. Timed on (a)'s topic in the same run, it splits (a)'s distance from 100k tx/s into
what the engine adds and what keeping this state costs on this machine at all.

Per transfer, and nothing more:
- the contract's hot-path decode (``decode_bank_transaction``): a worker must refuse bad input.
  With ``checked=False`` only msgspec's check of the JSON's shape, values taken as they come:
  what no decode can go below;
- a re-key by source account through a repartition topic, many transfers to a Kafka message,
  as trail messages go;
- a txn_id already stored is refused (a redelivery);
- a RocksDB row under its source account, ordered by time (what a later trace reads), and one
  by txn_id for the refusal; both rows go to a changelog topic, many to a Kafka message.

Per batch, the worker's checkpoint order: produce, wait for the broker, commit, write the store.
No FIFO allocation, no eviction index, no holdings, no actions: those are the engine's.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import msgspec
from rocksdict import Options, Rdict, WriteBatch

from pipeline.bench_baselines import _BATCH_BYTES, HEARTBEAT_INTERVAL_S, SESSION_TIMEOUT_S, Throughput
from pipeline.broker import create_topics
from pipeline.errors import InterceptorError
from pipeline.kafka import connect
from pipeline.topics import BANK_TRANSACTIONS
from processors.money_trail import partition_of
from processors.records import Transfer, account_label
from schemas.decode import decode_bank_transaction
from schemas.fast import bank_transaction_decoder

MAX_RECORDS = 20_000  # the worker's batch_max_records
CHUNK_ROWS = 2_000  # rows per Kafka message: far below a message's size limit
_MAX_MESSAGE_BYTES = 1 << 20
_Rekeyed = tuple[str, str, str, int | float | str, str, int | str]  # txn_id, source, target, amount, currency, at
_encode = msgspec.msgpack.encode
_decode = msgspec.msgpack.decode


@dataclass(frozen=True, slots=True)
class FloorRun:
    throughput: Throughput
    stored: int  # distinct transfers written to the store
    refused: int  # txn_ids already stored
    changelog_rows: int
    store: Path  # the loop's RocksDB, closed
    changelog: str  # its changelog topic


async def measure_keyed_floor(
    bootstrap: str, topic: str, expected: int, workdir: Path, *, checked: bool = True, timeout: float = 120.0
) -> FloorRun:
    """Read ``topic`` from its start with a fresh group until ``expected`` distinct transfers are stored.

    ``workdir`` receives the loop's RocksDB; the repartition and changelog topics are new for each run.
    """
    run = uuid.uuid4().hex[:8]
    consumer = connect(bootstrap).consumer(
        group_id=f"bench-floor-{run}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=int(SESSION_TIMEOUT_S * 1000),
        heartbeat_interval_ms=int(HEARTBEAT_INTERVAL_S * 1000),
        max_partition_fetch_bytes=4 << 20,
    )
    producer = connect(bootstrap).producer(
        acks=1, linger_ms=5, max_batch_size=_BATCH_BYTES, max_request_size=4 * _MAX_MESSAGE_BYTES
    )
    loop: _FloorLoop | None = None
    try:
        async with asyncio.timeout(timeout):
            await producer.start()
            partitions = len(await producer.partitions_for(topic))
            repartition, changelog = f"{topic}.floor-{run}-repartition", f"{topic}.floor-{run}-changelog"
            internal = [replace(BANK_TRANSACTIONS, name=n, partitions=partitions) for n in (repartition, changelog)]
            await create_topics(bootstrap, internal)
            consumer.subscribe([topic, repartition])
            await consumer.start()  # joins the group: half the session timeout on Tansu
            store = workdir / f"floor-{run}"
            loop = _FloorLoop(Rdict(str(store), _raw_options()), topic, partitions, checked)
            started: float | None = None
            while loop.stored + loop.refused < expected:
                batches = await consumer.getmany(timeout_ms=500, max_records=MAX_RECORDS)
                if not batches:
                    continue
                if started is None:
                    started = time.perf_counter()
                for tp, records in batches.items():
                    loop.take(tp.topic, tp.partition, [record.value for record in records])
                if loop.rejected:
                    raise InterceptorError(f"the floor loop's decode refused {loop.rejected:,} records of the feed")
                deliveries = [
                    await producer.send(name, value, partition=partition)
                    for name, messages in ((repartition, loop.rekeyed), (changelog, loop.changelog))
                    for partition, value in messages
                ]
                await asyncio.gather(*deliveries)
                await consumer.commit()
                loop.write()
            seconds = time.perf_counter() - (started or time.perf_counter())
    except TimeoutError:
        done = 0 if loop is None else loop.stored + loop.refused
        raise TimeoutError(f"the floor loop stored {done:,} of {expected:,} transfers in {timeout:.0f} s") from None
    finally:
        await consumer.stop()
        await producer.stop()
        if loop is not None:
            loop.db.close()
    taken = loop.stored + loop.refused
    return FloorRun(Throughput(taken, seconds), loop.stored, loop.refused, loop.changelog_rows, store, changelog)


class _FloorLoop:
    """One batch's work, broker-free: what goes out before the commit, and the rows written after it."""

    def __init__(self, db: Rdict, feed_topic: str, partitions: int, checked: bool) -> None:
        self.db = db
        self.feed_topic = feed_topic
        self.partitions = partitions
        self._decode_feed = self._checked if checked else self._shape_only
        self.stored = self.refused = self.rejected = self.changelog_rows = 0
        self.rekeyed: list[tuple[int, bytes]] = []
        self.changelog: list[tuple[int, bytes]] = []
        self._rows = WriteBatch(raw_mode=True)
        self._batch_ids: set[bytes] = set()

    def take(self, topic: str, partition: int, values: list[bytes | None]) -> None:
        if topic == self.feed_topic:
            self._rekey(values)
        else:
            self._store(partition, values)

    def _rekey(self, values: list[bytes | None]) -> None:
        by_partition: defaultdict[int, list[_Rekeyed]] = defaultdict(list)
        for raw in values:
            transfer = self._decode_feed(raw or b"")
            if transfer is None:
                self.rejected += 1
            else:
                by_partition[partition_of(transfer[1], self.partitions)].append(transfer)
        self.rekeyed.extend(_chunked(by_partition))

    @staticmethod
    def _checked(raw: bytes) -> _Rekeyed | None:
        decoded = decode_bank_transaction(raw, _MAX_MESSAGE_BYTES)
        if type(decoded) is not Transfer:
            return None
        source, target = account_label(decoded.source), account_label(decoded.target)
        return decoded.txn_id, source, target, decoded.amount, decoded.currency, decoded.at_ms

    @staticmethod
    def _shape_only(raw: bytes) -> _Rekeyed | None:
        try:
            wire = bank_transaction_decoder.decode(raw)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return None
        source, target = wire.from_account, wire.to_account
        return (
            wire.txn_id,
            f"{source.kind}:{source.institution}:{source.account}",
            f"{target.kind}:{target.institution}:{target.account}",
            wire.amount,
            wire.currency,
            wire.executed_at,  # ISO 8601 text: ordered as the time is, within one offset
        )

    def _store(self, partition: int, values: list[bytes | None]) -> None:
        """Transfers re-keyed to ``partition`` of the repartition topic: their account's, so its changelog's too."""
        rows: list[tuple[bytes, bytes]] = []
        get = self.db.get
        for raw in values:
            for txn_id, source, target, amount, currency, at in _decode(raw or b"[]"):
                by_id = b"I" + txn_id.encode()
                if by_id in self._batch_ids or get(by_id) is not None:
                    self.refused += 1
                    continue
                self._batch_ids.add(by_id)
                when = at.to_bytes(8, "big") if type(at) is int else at.encode()
                row = b"\x00".join((b"T" + source.encode(), when, by_id))  # by_id, last, holds no NUL
                rows.append((row, _encode((target, amount, currency))))
                rows.append((by_id, b""))
                self.stored += 1
        for key, value in rows:
            self._rows.put(key, value)
        self.changelog_rows += len(rows)
        self.changelog.extend(_chunked({partition: rows}))

    def write(self) -> None:
        """After the commit: the store then reflects what the committed offsets say was taken."""
        self.db.write(self._rows)
        self._rows = WriteBatch(raw_mode=True)
        self._batch_ids.clear()
        self.rekeyed, self.changelog = [], []


def _chunked(by_partition: Mapping[int, Sequence[object]]) -> list[tuple[int, bytes]]:
    return [
        (partition, _encode(items[start : start + CHUNK_ROWS]))
        for partition, items in by_partition.items()
        for start in range(0, len(items), CHUNK_ROWS)
    ]


def _raw_options() -> Options:
    options = Options(raw_mode=True)
    options.create_if_missing(True)
    return options
