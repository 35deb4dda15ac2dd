"""One batch of input records in, dead letters and actions out: the step the worker loop repeats.

No I/O here: the loop hands over consumed records and publishes what comes back,
so the step is tested without a broker and replayed as-is during recovery.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from pipeline.settings import Settings
from pipeline.topics import ACTION_ACKS, BANK_TRANSACTIONS, TELECOM_EVENTS, VICTIM_REPORTS
from processors.freeze_orders import FreezeBook, FreezeOrder
from processors.lifecycle import AckOutcome, AckRefused, ActionLifecycle
from processors.money_trail import MoneyTrail
from processors.records import Transfer
from processors.report_revisions import ReportRevisions
from processors.telecom import SuspensionOrder, TelecomCorrelation, WarningOrder
from schemas.decode import (
    Rejection,
    decode_action_ack,
    decode_bank_transaction,
    decode_telecom_event,
    decode_victim_report,
)


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
    suspensions: list[SuspensionOrder] = field(default_factory=list)
    warnings: list[WarningOrder] = field(default_factory=list)
    acks: list[AckOutcome] = field(default_factory=list)
    escalated: list[FreezeOrder | SuspensionOrder] = field(default_factory=list)
    new_reports: list[str] = field(default_factory=list)

    @property
    def actions(self) -> list[FreezeOrder | SuspensionOrder]:
        return [*self.orders, *self.suspensions, *self.escalated]


IssuedAction = FreezeOrder | SuspensionOrder | WarningOrder

EMPTY = Rejection("invalid_event", "the message has no value (a tombstone or an empty record)")
UNKNOWN_TOPIC = Rejection("unknown_topic", "this topic is not an input of the pipeline")


class Interception:
    """The money trail, telecom correlation, order books and action lifecycle, fed batch by batch."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.revisions = ReportRevisions()
        self.trail = MoneyTrail(settings.trace)
        self.book = FreezeBook(max_hops=settings.max_hops, hold_duration_ms=settings.hold_duration_ms)
        self.telecom = TelecomCorrelation(settings.telecom)
        self.lifecycle = ActionLifecycle(settings.sla)
        self._bank_topic = settings.topic(BANK_TRANSACTIONS)
        self._handlers: dict[str, Callable[[InputRecord, bytes, BatchResult], None]] = {
            settings.topic(VICTIM_REPORTS): self._take_report,
            settings.topic(TELECOM_EVENTS): self._take_telecom_event,
            settings.topic(ACTION_ACKS): self._take_ack,
        }

    def ingest(self, records: Iterable[InputRecord], result: BatchResult) -> None:
        """Decode and index; bad records become rejections, never exceptions."""
        max_bytes = self.settings.max_message_bytes
        add_transaction = self.trail.add_transaction
        bank_topic, handlers = self._bank_topic, self._handlers
        for record in records:
            raw = record.value
            if not raw:
                result.rejected.append(Rejected(record, EMPTY))
            elif record.topic == bank_topic:  # the hot path: keep it inline
                decoded = decode_bank_transaction(raw, max_bytes)
                if type(decoded) is Transfer:
                    add_transaction(decoded)
                else:
                    result.rejected.append(Rejected(record, decoded))  # type: ignore[arg-type]
            else:
                handler = handlers.get(record.topic)
                if handler is None:
                    result.rejected.append(Rejected(record, UNKNOWN_TOPIC))
                else:
                    handler(record, raw, result)

    def _take_report(self, record: InputRecord, raw: bytes, result: BatchResult) -> None:
        report = decode_victim_report(raw, self.settings.max_message_bytes, received_at_ms=record.timestamp)
        if isinstance(report, Rejection):
            result.rejected.append(Rejected(record, report))
            return
        decision = self.revisions.receive(report)
        if decision.reason is not None:
            result.rejected.append(Rejected(record, Rejection(decision.reason, decision.error)))
            return
        if not decision.accepted:
            return  # a redelivery, or a revision already superseded
        self.trail.add_report(report)
        self.telecom.add_report(report)
        if decision.outcome == "new":
            result.new_reports.append(report.report_id)

    def _take_telecom_event(self, record: InputRecord, raw: bytes, result: BatchResult) -> None:
        event = decode_telecom_event(raw, self.settings.max_message_bytes)
        if isinstance(event, Rejection):
            result.rejected.append(Rejected(record, event))
        else:
            self.telecom.add_event(event)

    def _take_ack(self, record: InputRecord, raw: bytes, result: BatchResult) -> None:
        ack = decode_action_ack(raw, self.settings.max_message_bytes, received_at_ms=record.timestamp)
        if isinstance(ack, Rejection):
            result.rejected.append(Rejected(record, ack))
            return
        outcome = self.lifecycle.acknowledge(ack)
        if isinstance(outcome, AckRefused):
            result.rejected.append(Rejected(record, Rejection(outcome.reason, outcome.error)))
        else:
            result.acks.append(outcome)

    def decide(self, now_ms: int, result: BatchResult) -> None:
        """Re-trace what changed and issue the orders whose content changed."""
        traces = self.trail.retrace()
        self.telecom.add_accounts(self.trail.drain_new_accounts())
        decisions = self.telecom.decide(now_ms)
        result.suspensions.extend(decisions.suspensions)
        result.warnings.extend(decisions.warnings)
        if traces or decisions.links:
            result.orders.extend(self.book.update(traces, decisions.links, self.revisions, now_ms))
        for action in result.actions:  # nothing is escalated here, so these are this batch's orders
            self._track(action)

    def restore(self, action: IssuedAction) -> None:
        """Start-up recovery: an action already on its topic, as the books and the lifecycle last saw it."""
        if isinstance(action, FreezeOrder):
            self.book.restore(action.action_id, action.version, action.fingerprint, action.escalation)
        elif isinstance(action, SuspensionOrder):
            self.telecom.restore("suspension", action.action_id, action.version, action.fingerprint, action.escalation)
        else:
            self.telecom.restore("warning", action.warning_id, action.version, action.fingerprint)
            return
        self._track(action)

    def rebuild(self, now_ms: int) -> None:
        """After replaying the inputs: recompute every decision and match it to what was restored, issuing nothing.

        Whatever differs belongs to a batch that was published but not committed; it is
        redelivered next and decided again.
        """
        traces = self.trail.retrace()
        self.telecom.add_accounts(self.trail.drain_new_accounts())
        decisions = self.telecom.decide(now_ms, rebuilding=True)
        self.book.adopt(traces, decisions.links, self.revisions, now_ms)

    def escalate(self, now_ms: int) -> BatchResult:
        """Re-issue every action that missed its SLA, with raised priority."""
        result = BatchResult()
        for action_id in self.lifecycle.due(now_ms):
            order = self.book.escalate(action_id, now_ms) or self.telecom.escalate(action_id, now_ms)
            if order is not None:
                result.escalated.append(order)
                self._track(order)
        return result

    def _track(self, action: FreezeOrder | SuspensionOrder) -> None:
        self.lifecycle.issued(
            action_id=action.action_id,
            version=action.version,
            kind=action.kind,
            addressee=action.addressee,
            priority=action.priority,
            currency=action.currency if isinstance(action, FreezeOrder) else None,
            active=action.status == "active" and not (isinstance(action, FreezeOrder) and action.hold == 0),
            issued_at_ms=action.issued_at_ms,
            report_received_at_ms=action.report_received_at_ms,
        )

    def process(self, records: Iterable[InputRecord], now_ms: int) -> BatchResult:
        result = BatchResult()
        self.ingest(records, result)
        self.decide(now_ms, result)
        return result
