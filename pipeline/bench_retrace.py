"""Re-trace cost figures for ``interceptor bench``: does the work per batch follow what changed?

(e) one case whose reported money has reached ``accounts`` mule accounts (a tree of mules,
    ``max_hops`` deep) takes 1,000 new bank transactions a second, every one of them out of
    an account in the case. Timed: each batch through ``Interception.process``, the step the
    worker repeats (decode, index, re-trace, freeze orders).
(f) ``victims`` reports whose money all ends in one cash-out account (victim -> own mule ->
    cash-out), arriving 100 reports with their transfers per batch. Timed per batch and in
    total without a broker, and end to end through the embedded broker and the real worker:
    from the first message produced until the cash-out's freeze action names every report.

The scenarios are pure functions of their sizes and a start time, so a test runs them small.
"""

from __future__ import annotations

import asyncio
import math
import statistics
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson
from aiokafka import AIOKafkaConsumer

from pipeline.interception import Interception
from pipeline.kafka import KafkaConnection
from pipeline.metrics import Metrics
from pipeline.settings import Settings
from pipeline.topics import BANK_TRANSACTIONS, FREEZE_ACTIONS, VICTIM_REPORTS, TopicSpec
from pipeline.worker import InterceptionWorker
from processors.money_trail import Holding, HoldingTrace, MoneyTrail, TraceSettings
from processors.records import AccountKey
from schemas.fields import format_minor_units

Payload = tuple[TopicSpec, bytes]  # (input topic, message value)

CASE_ROOTS = 10  # reports paying the case's first mules; the rest of the case fans out from them
CASE_HOLD_MINOR = 100_000  # what every case account keeps: 1,000.00 THB, enough for its new outflows to draw on
NEW_TRANSFER_MINOR = 100  # 1.00 THB per new transaction out of the case
HOP_GAP_MS = 10 * 60_000  # money moves on one hop every 10 minutes
FAN_IN_SPACING_MS = 10_000  # one victim every 10 seconds
FAN_IN_LOSS_MINOR = 2_500_000  # 25,000.00 THB per victim
FAN_IN_REPORTS_PER_BATCH = 100
END_TO_END_TIMEOUT_S = 300.0


@dataclass(frozen=True, slots=True)
class FeedRecord:
    """One consumed message, as ``pipeline.interception.InputRecord`` describes it."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    value: bytes | None


@dataclass(slots=True)
class Feed:
    """Turns payloads into input records with increasing offsets per topic, as one partition each would."""

    settings: Settings
    _offsets: dict[str, int] = field(default_factory=dict)

    def records(self, payloads: Iterable[Payload], timestamp_ms: int) -> list[FeedRecord]:
        records = []
        for spec, value in payloads:
            topic = self.settings.topic(spec)
            offset = self._offsets.get(topic, 0)
            self._offsets[topic] = offset + 1
            records.append(FeedRecord(topic, 0, offset, timestamp_ms, value))
        return records


# -- scenarios ---------------------------------------------------------------------------------------


def _ref(account: AccountKey) -> dict[str, str]:
    kind, institution, number = account
    return {"institution": institution, "account": number, "kind": kind}


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def bank_transaction(txn_id: str, source: AccountKey, target: AccountKey, minor: int, at_ms: int) -> Payload:
    value = {"txn_id": txn_id, "from_account": _ref(source), "to_account": _ref(target),
             "amount": format_minor_units(minor, "THB"), "currency": "THB", "executed_at": _iso(at_ms)}  # fmt: skip
    return BANK_TRANSACTIONS, orjson.dumps(value)


def victim_report(report_id: str, txn_id: str, victim: AccountKey, mule: AccountKey, minor: int, at_ms: int) -> Payload:
    """A report naming one payment; the payment itself comes from the bank feed as well."""
    transfer = {"txn_id": txn_id, "from_account": _ref(victim), "to_account": _ref(mule),
                "amount": format_minor_units(minor, "THB"), "currency": "THB", "sent_at": _iso(at_ms)}  # fmt: skip
    value = {"report_id": report_id, "reported_at": _iso(at_ms + 60_000), "victim_id": report_id, "country": "TH",
             "scam_type": "investment", "transfers": [transfer]}  # fmt: skip
    return VICTIM_REPORTS, orjson.dumps(value)


@dataclass(frozen=True, slots=True)
class Case:
    """A case that has reached ``accounts`` mule accounts, each keeping ``CASE_HOLD_MINOR``."""

    accounts: tuple[AccountKey, ...]
    payloads: tuple[Payload, ...]  # the tree's transfers, then the reports and their payments
    settled_ms: int  # every transfer of the case happened before this

    def new_transactions(self, batch: int, per_batch: int) -> list[Payload]:
        """One second of transfers out of the case, at ``settled_ms + batch`` seconds, to accounts never seen."""
        start_ms = self.settled_ms + batch * 1000
        payloads = []
        for index in range(per_batch):
            source = self.accounts[(batch * per_batch + index) % len(self.accounts)]
            target = ("bank", "KTBK", f"out-{batch}-{index}")
            at_ms = start_ms + index * 1000 // per_batch
            payloads.append(bank_transaction(f"out-{batch}-{index}", source, target, NEW_TRANSFER_MINOR, at_ms))
        return payloads


def case_fanout(accounts: int, roots: int, max_hops: int) -> int:
    """The smallest number of mules each mule pays on that reaches ``accounts`` within ``max_hops``."""
    fanout = 1
    while roots * sum(fanout**hop for hop in range(max_hops + 1)) < accounts:
        fanout += 1
    return fanout


def build_case(accounts: int, start_ms: int, *, max_hops: int, roots: int = CASE_ROOTS) -> Case:
    """A forest of mules, filled breadth first: mule ``i`` (past the roots) is paid by mule ``(i - roots) // fanout``.

    Every mule receives what its whole subtree keeps and passes the rest on, so each one keeps
    ``CASE_HOLD_MINOR`` and is tainted. The roots are paid by victims who report.
    """
    if accounts < roots:
        raise ValueError(f"a case of {accounts} accounts needs at least its {roots} roots")
    fanout = case_fanout(accounts, roots, max_hops)
    mules = tuple(("bank", ("SCBK", "BBLK", "BAYK")[i % 3], f"case-{i:06d}") for i in range(accounts))
    parent = [-1] * roots + [(i - roots) // fanout for i in range(roots, accounts)]
    depth = [0] * accounts
    for i in range(roots, accounts):
        depth[i] = depth[parent[i]] + 1
    subtree = [1] * accounts
    for i in range(accounts - 1, roots - 1, -1):
        subtree[parent[i]] += subtree[i]
    payloads: list[Payload] = []
    for i in range(roots, accounts):
        at_ms = start_ms + depth[i] * HOP_GAP_MS + i
        payloads.append(bank_transaction(f"case-{i}", mules[parent[i]], mules[i], subtree[i] * CASE_HOLD_MINOR, at_ms))
    for i in range(roots):
        victim, minor = ("bank", "KBNK", f"victim-{i}"), subtree[i] * CASE_HOLD_MINOR
        payloads.append(bank_transaction(f"case-pay-{i}", victim, mules[i], minor, start_ms + i))
        payloads.append(victim_report(f"case-report-{i}", f"case-pay-{i}", victim, mules[i], minor, start_ms + i))
    return Case(mules, tuple(payloads), start_ms + (max(depth) + 1) * HOP_GAP_MS)


CASH_OUT: AccountKey = ("bank", "BBLK", "cash-out-1")


def fan_in_batches(victims: int, start_ms: int, per_batch: int = FAN_IN_REPORTS_PER_BATCH) -> list[list[Payload]]:
    """Each victim pays an own mule, who pays the cash-out two minutes later; ``per_batch`` victims a batch."""
    batches: list[list[Payload]] = []
    for first in range(0, victims, per_batch):
        batch: list[Payload] = []
        for i in range(first, min(first + per_batch, victims)):
            victim, mule = ("bank", "KBNK", f"fan-victim-{i}"), ("bank", "SCBK", f"fan-mule-{i}")
            at_ms = start_ms + i * FAN_IN_SPACING_MS
            batch.append(bank_transaction(f"fan-pay-{i}", victim, mule, FAN_IN_LOSS_MINOR, at_ms))
            batch.append(victim_report(f"fan-report-{i}", f"fan-pay-{i}", victim, mule, FAN_IN_LOSS_MINOR, at_ms))
            batch.append(bank_transaction(f"fan-out-{i}", mule, CASH_OUT, FAN_IN_LOSS_MINOR, at_ms + 120_000))
        batches.append(batch)
    return batches


# -- measurements ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BatchTimes:
    """Milliseconds per batch through ``Interception.process``."""

    ms: tuple[float, ...]

    @property
    def p50(self) -> float:
        return statistics.median(self.ms)

    @property
    def p99(self) -> float:
        return percentile(self.ms, 0.99)

    @property
    def total_s(self) -> float:
        return sum(self.ms) / 1000


@dataclass(frozen=True, slots=True)
class CaseFigures:
    tainted: int  # case accounts holding traced money before the new transactions
    live_orders: int  # live freeze orders before the new transactions
    batches: BatchTimes  # the whole step: decode, index, re-trace, freeze orders
    retraces: BatchTimes  # ``MoneyTrail.retrace`` alone
    holdings_per_batch: float  # median holdings a batch of new transactions changed
    orders_per_batch: float  # median freeze-order versions it issued
    build_s: float  # tracing the whole case from scratch, once


class TimedTrail(MoneyTrail):
    """The money trail, noting how long each re-trace took and how many holdings it changed."""

    def __init__(self, settings: TraceSettings) -> None:
        super().__init__(settings)
        self.retrace_ms: list[float] = []
        self.changed: list[int] = []

    def retrace(self) -> dict[Holding, HoldingTrace | None]:
        started = time.perf_counter()
        changed = super().retrace()
        self.retrace_ms.append((time.perf_counter() - started) * 1000)
        self.changed.append(len(changed))
        return changed


@dataclass(frozen=True, slots=True)
class FanInFigures:
    batches: BatchTimes
    reports_at_cash_out: int


def measure_case(
    settings: Settings, accounts: int = 10_000, batches: int = 20, per_batch: int = 1_000, *, start_ms: int = 0
) -> CaseFigures:
    """(e): build the case, then time each batch of ``per_batch`` new transactions out of it."""
    start_ms = start_ms or int(time.time() * 1000) - 48 * 3600_000
    case = build_case(accounts, start_ms, max_hops=settings.max_hops)
    interception, feed = Interception(settings), Feed(settings)
    trail = interception.trail = TimedTrail(settings.trace)  # before any input: the same engine, timed
    started = time.perf_counter()
    interception.process(feed.records(case.payloads, case.settled_ms), now_ms=case.settled_ms)
    build_s = time.perf_counter() - started
    case_accounts = set(case.accounts)
    tainted = sum(1 for account, _ in interception.trail.holdings() if account in case_accounts)
    live = len(interception.actions.live("freeze"))
    times, orders = [], []
    trail.retrace_ms.clear()
    trail.changed.clear()
    for batch in range(batches):
        now_ms = case.settled_ms + (batch + 1) * 1000
        records = feed.records(case.new_transactions(batch, per_batch), now_ms)
        started = time.perf_counter()
        result = interception.process(records, now_ms)
        times.append((time.perf_counter() - started) * 1000)
        orders.append(len(result.orders))
    return CaseFigures(
        tainted=tainted,
        live_orders=live,
        batches=BatchTimes(tuple(times)),
        retraces=BatchTimes(tuple(trail.retrace_ms)),
        holdings_per_batch=statistics.median(trail.changed),
        orders_per_batch=statistics.median(orders),
        build_s=build_s,
    )


def measure_fan_in(
    settings: Settings, victims: int = 3_000, per_batch: int = FAN_IN_REPORTS_PER_BATCH, *, start_ms: int = 0
) -> FanInFigures:
    """(f) without a broker: each batch of reports and their transfers through ``Interception.process``."""
    start_ms = start_ms or int(time.time() * 1000) - 24 * 3600_000
    interception, feed = Interception(settings), Feed(settings)
    times = []
    for number, payloads in enumerate(fan_in_batches(victims, start_ms, per_batch)):
        now_ms = start_ms + (number + 1) * per_batch * FAN_IN_SPACING_MS + 180_000
        records = feed.records(payloads, now_ms)
        started = time.perf_counter()
        interception.process(records, now_ms)
        times.append((time.perf_counter() - started) * 1000)
    trace = interception.trail.holding((CASH_OUT, "THB"))
    return FanInFigures(BatchTimes(tuple(times)), len(trace.report_ids) if trace else 0)


async def measure_fan_in_end_to_end(settings: Settings, bootstrap: str, victims: int = 3_000) -> float:
    """Seconds from the first message produced to a freeze action on the cash-out naming all ``victims`` reports.

    The real worker consumes; the topics under ``settings.topic_prefix`` must exist and be empty.
    """
    metrics = Metrics(settings.consumer_group)
    worker = InterceptionWorker(settings, bootstrap, metrics)
    await worker.start()
    producer = KafkaConnection.of(settings, bootstrap).producer(linger_ms=5, max_batch_size=1 << 20)
    watcher = KafkaConnection.of(settings, bootstrap).consumer(
        settings.topic(FREEZE_ACTIONS), auto_offset_reset="earliest", fetch_max_wait_ms=5
    )
    await producer.start()
    await watcher.start()
    try:
        await asyncio.wait_for(worker.ready.wait(), timeout=60)
        start_ms = int(time.time() * 1000) - 24 * 3600_000
        payloads = [payload for batch in fan_in_batches(victims, start_ms) for payload in batch]
        started = time.perf_counter()
        await asyncio.gather(*[await producer.send(settings.topic(spec), value) for spec, value in payloads])
        await _cash_out_names(watcher, victims, started + END_TO_END_TIMEOUT_S)
        elapsed = time.perf_counter() - started
        # The action goes out before the worker commits its batch: let it finish before stopping it.
        topics = {settings.topic(spec) for spec, _ in payloads}
        while sum(consumed_records(metrics, topic) for topic in topics) < len(payloads):
            await asyncio.sleep(0.01)
        return elapsed
    finally:
        await watcher.stop()
        await producer.stop()
        await worker.stop()


def consumed_records(metrics: Metrics, topic: str) -> int:
    """Records of ``topic`` the worker has processed and committed."""
    return int(metrics.registry.get_sample_value("interceptor_events_consumed_total", {"topic": topic}) or 0)


async def _cash_out_names(watcher: AIOKafkaConsumer, victims: int, deadline: float) -> None:
    cash_out = _ref(CASH_OUT)
    seen = 0
    while time.perf_counter() < deadline:
        for records in (await watcher.getmany(timeout_ms=20)).values():
            for record in records:
                action = orjson.loads(record.value)
                if action["target"] == cash_out:
                    seen = max(seen, action.get("report_ids_total", len(action["report_ids"])))
        if seen >= victims:
            return
    raise TimeoutError(f"the cash-out's freeze action named {seen} of {victims} reports after {END_TO_END_TIMEOUT_S} s")


def percentile(values: Iterable[float], share: float) -> float:
    """Nearest rank: the smallest value at least ``share`` of them are not above."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(len(ordered) * share) - 1)]
