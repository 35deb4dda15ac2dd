"""One batch of input records in, dead letters and freeze orders out: the step the worker loop repeats.

No I/O here: the loop hands over consumed records and publishes what comes back,
so the step is tested without a broker and replayed as-is during recovery.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from pipeline.settings import Settings
from pipeline.topics import BANK_TRANSACTIONS, VICTIM_REPORTS
from processors.freeze_orders import FreezeBook, FreezeOrder
from processors.money_trail import MoneyTrail
from processors.records import Transfer
from schemas.decode import Rejection, decode_bank_transaction, decode_victim_report


class InputRecord(Protocol):
    """The part of aiokafka's ConsumerRecord we use."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def timestamp(self) -> int: ...
    @property
    def value(self) -> bytes | None: ...


@dataclass(frozen=True, slots=True)
class Rejected:
    record: InputRecord
    rejection: Rejection


@dataclass(slots=True)
class BatchResult:
    rejected: list[Rejected] = field(default_factory=list)
    orders: list[FreezeOrder] = field(default_factory=list)
    new_reports: list[str] = field(default_factory=list)


EMPTY = Rejection("invalid_event", "the message has no value (a tombstone or an empty record)")
UNKNOWN_TOPIC = Rejection("unknown_topic", "this topic is not an input of the pipeline")


class Interception:
    """The money trail and the freeze book, fed batch by batch."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.trail = MoneyTrail(settings.trace)
        self.book = FreezeBook(max_hops=settings.max_hops, hold_duration_ms=settings.hold_duration_ms)

    def ingest(self, records: Iterable[InputRecord], result: BatchResult) -> None:
        """Decode and index; bad records become rejections, never exceptions."""
        max_bytes = self.settings.max_message_bytes
        add_transaction = self.trail.add_transaction
        bank_topic, reports_topic = self.settings.topic(BANK_TRANSACTIONS), self.settings.topic(VICTIM_REPORTS)
        for record in records:
            raw = record.value
            if not raw:
                result.rejected.append(Rejected(record, EMPTY))
            elif record.topic == bank_topic:
                decoded = decode_bank_transaction(raw, max_bytes)
                if type(decoded) is Transfer:
                    add_transaction(decoded)
                else:
                    result.rejected.append(Rejected(record, decoded))  # type: ignore[arg-type]
            elif record.topic == reports_topic:
                report = decode_victim_report(raw, max_bytes, received_at_ms=record.timestamp)
                if isinstance(report, Rejection):
                    result.rejected.append(Rejected(record, report))
                elif self.trail.add_report(report):
                    result.new_reports.append(report.report_id)
            else:
                result.rejected.append(Rejected(record, UNKNOWN_TOPIC))

    def decide(self, now_ms: int, result: BatchResult) -> None:
        """Re-trace what changed and issue the freeze orders whose content changed."""
        changed, traces = self.trail.retrace()
        if changed:
            result.orders.extend(self.book.update(changed, traces, self.trail.reports, now_ms))

    def process(self, records: Iterable[InputRecord], now_ms: int) -> BatchResult:
        result = BatchResult()
        self.ingest(records, result)
        self.decide(now_ms, result)
        return result
