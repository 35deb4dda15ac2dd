"""Where the single worker's time per transaction goes, without a broker: (m) of ``make bench``.

The worker's batch on a RocksDB trail, step by step, as ``pipeline.worker`` runs it: decoding and
indexing (``Interception.ingest``), deciding (``decide``: what changed, re-traced), closing the batch
into rows (``RocksStores.stage``), encoding them for the changelog (``changelog.chunks``) and writing
them (``flush``). What (a) adds on top is aiokafka's and the broker's.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from connectors.synthetic_feed import bulk_bank_transactions
from pipeline.bench_retrace import Feed
from pipeline.changelog import chunks
from pipeline.interception import BatchResult, Interception
from pipeline.settings import Settings
from pipeline.topics import BANK_TRANSACTIONS
from pipeline.trail_store import RocksStores

BATCH = 20_000  # the worker's batch_max_records


@dataclass(frozen=True)
class IndexingSplit:
    """Microseconds per transaction in each step of the worker's batch."""

    transactions: int
    ingest_us: float
    decide_us: float
    stage_us: float
    encode_us: float
    write_us: float

    @property
    def total_us(self) -> float:
        return self.ingest_us + self.decide_us + self.stage_us + self.encode_us + self.write_us


def measure_indexing_split(transactions: int, batch: int = BATCH) -> IndexingSplit:
    """Index ``transactions`` of the bench feed on a fresh RocksDB trail; raises if any was not indexed (a run that
    skipped them as redeliveries would time the wrong path)."""
    settings = Settings()
    topic = settings.topic(BANK_TRANSACTIONS)
    now_ms = int(time.time() * 1000)
    feed = bulk_bank_transactions(transactions, seed=3, start_ms=now_ms - 3600_000)
    records = Feed(settings).records(((BANK_TRANSACTIONS, raw) for raw in feed), now_ms)
    spent = [0.0] * 5
    with tempfile.TemporaryDirectory() as workdir:
        stores = RocksStores.for_history(Path(workdir) / "trail", settings.trace.history_retention_ms)
        interception = Interception(settings, stores=stores)
        for start in range(0, len(records), batch):
            chunk = records[start : start + batch]
            result = BatchResult()
            began = time.perf_counter()
            interception.ingest(chunk, result)
            ingested = time.perf_counter()
            interception.decide(now_ms, result)
            decided = time.perf_counter()
            rows = stores.stage({(topic, 0): chunk[-1].offset + 1})
            staged = time.perf_counter()
            chunks(rows, settings.max_action_bytes)
            encoded = time.perf_counter()
            stores.flush(start // batch + 1)
            written = time.perf_counter()
            for step, (since, until) in enumerate(
                [(began, ingested), (ingested, decided), (decided, staged), (staged, encoded), (encoded, written)]
            ):
                spent[step] += until - since
            if result.rejected:
                raise RuntimeError(f"the bench feed had {len(result.rejected)} rejections: {result.rejected[0]}")
        indexed = len(interception.trail)
        stores.close()
    if indexed != len(records):
        raise RuntimeError(f"{indexed:,} of {len(records):,} transactions indexed: the bench timed another path")
    ingest, decide, stage, encode, write = (seconds / len(records) * 1e6 for seconds in spent)
    return IndexingSplit(len(records), ingest, decide, stage, encode, write)
