"""One batch of input records in, dead letters and actions out: the step the worker loop repeats.

No I/O here: the loop hands over consumed records and publishes what comes back,
so the step is tested without a broker and replayed as-is during recovery.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Protocol, cast

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from pipeline.ack_authentication import AckAuthentication
from pipeline.settings import Settings
from pipeline.topics import (
    ACTION_ACKS,
    BANK_TRANSACTIONS,
    RELEASE_REQUESTS,
    TELECOM_EVENTS,
    TRAIL_HOLDINGS,
    VICTIM_REPORTS,
)
from pipeline.trail_messages import BadTrailMessage, decode_holdings
from processors.action_book import ActionBook, Withdrawal, ranked
from processors.circuit_breaker import CircuitBreaker
from processors.freeze_orders import FreezeBook, FreezeOrder
from processors.lifecycle import AckOutcome, AckRefused, ActionLifecycle, expired_action
from processors.money_trail import MoneyTrail, Trail
from processors.records import ReleaseRequest, Transfer, partner_id
from processors.release import Grant, ReleaseDecision, ReleaseDesk, appeal_reason, expired_holds
from processors.report_revisions import ReportRevisions
from processors.telecom import SuspensionOrder, TelecomCorrelation, TelecomDecisions, WarningOrder
from processors.trail_view import TrailView
from processors.transfer_store import TransferStores
from schemas.decode import (
    Rejection,
    decode_action_ack,
    decode_bank_transaction,
    decode_release_request,
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
    unheld: list[FreezeOrder | SuspensionOrder] = field(default_factory=list)  # held back earlier, out now
    new_reports: list[str] = field(default_factory=list)
    release_requests: list[ReleaseRequest] = field(default_factory=list)  # decided after the batch's re-trace
    answers: list[ReleaseDecision] = field(default_factory=list)
    held: list[FreezeOrder | SuspensionOrder] = field(default_factory=list)  # started waiting: persist them
    tombstones: list[str] = field(default_factory=list)  # action ids no longer waiting

    @property
    def actions(self) -> list[FreezeOrder | SuspensionOrder]:
        """The action versions to send now (the circuit breaker has had its say)."""
        return [*self.orders, *self.suspensions, *self.escalated, *self.unheld]


IssuedAction = FreezeOrder | SuspensionOrder | WarningOrder


@dataclass(frozen=True, slots=True)
class ExpiryCounts:
    """What one ``Interception.expire`` forgot, per store."""

    transactions: int  # bank transfers past the history retention (the money trail's own eviction)
    reports: int
    telecom_events: int
    holdings: int  # the freeze book's traces and payment-proxy links
    actions: int  # from the action book and the lifecycle


EMPTY = Rejection("invalid_event", "the message has no value (a tombstone or an empty record)")
UNKNOWN_TOPIC = Rejection("unknown_topic", "this topic is not an input of the pipeline")


class Interception:
    """The money trail, telecom correlation, action book and action lifecycle, fed batch by batch.

    The freeze book and the telecom correlation decide what each action should say now; the one
    action book decides which of that is a new version; the lifecycle hears of every version
    (issued or restored) in ``_track``; ``expire`` forgets what is past its retention.
    """

    def __init__(
        self,
        settings: Settings,
        stores: TransferStores | None = None,
        institution_keys: Mapping[str, Mapping[str, Ed25519PublicKey]] | None = None,
        trail: Trail | None = None,
    ) -> None:
        """``institution_keys``: the institutions' registered ack keys (``pipeline.keys.load_institution_keys``).

        ``trail``: by default the whole trail runs here, on ``stores``; a ``TrailView`` follows one
        whose partitions run in other processes.
        """
        self.settings = settings
        self.revisions = ReportRevisions(settings.report_retention_ms, closed_ms=VICTIM_REPORTS.retention_ms)
        self.trail: Trail = MoneyTrail(settings.trace, stores=stores) if trail is None else trail
        self.freezes = FreezeBook(max_hops=settings.max_hops, hold_duration_ms=settings.hold_duration_ms)
        self.telecom = TelecomCorrelation(settings.telecom)
        self.actions = ActionBook()
        self.lifecycle = ActionLifecycle(settings.sla)
        self.releases = ReleaseDesk(
            quiet_period_ms=_ms(settings.release_quiet_period), war_room=settings.default_addressee
        )
        self.breaker: CircuitBreaker[FreezeOrder | SuspensionOrder] = CircuitBreaker(
            settings.max_actions_per_institution, _ms(settings.circuit_breaker_window)
        )
        self._bank_topic = settings.topic(BANK_TRANSACTIONS)
        self._handlers: dict[str, Callable[[InputRecord, bytes, BatchResult], None]] = {
            settings.topic(VICTIM_REPORTS): self._take_report,
            settings.topic(TELECOM_EVENTS): self._take_telecom_event,
            settings.topic(ACTION_ACKS): self._take_ack,
            settings.topic(RELEASE_REQUESTS): self._release_request_taker(None),
        }
        for requester, topic in settings.release_request_topics.items():
            self._handlers[topic] = self._release_request_taker(requester)
        if isinstance(self.trail, TrailView):
            self._handlers[settings.topic(TRAIL_HOLDINGS)] = self._take_holdings
        self.ack_authentication = AckAuthentication(settings.topic_prefix, institution_keys or {})

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
                if handler is None and self.ack_authentication.is_ack_topic(record.topic):
                    handler = self._take_ack  # an institution's own action-acks.<institution>
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

    def _take_holdings(self, record: InputRecord, raw: bytes, result: BatchResult) -> None:
        """A trail partition's changed holdings, from the worker that owns it."""
        assert isinstance(self.trail, TrailView)
        try:
            holdings = decode_holdings(raw)
        except BadTrailMessage as error:
            result.rejected.append(Rejected(record, Rejection("invalid_trail_message", str(error))))
            return
        self.trail.receive_holdings(*holdings)

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
        refusal = self.ack_authentication.refusal(record.topic, raw, ack.addressee)
        if refusal is not None:  # before the lifecycle hears of it: a forged ack changes nothing
            result.rejected.append(Rejected(record, refusal))
            return
        outcome = self.lifecycle.acknowledge(ack)
        if isinstance(outcome, AckRefused):
            if outcome.reason == "unknown_action" and self.actions.retired(ack.action_id, ack.addressee.__eq__):
                outcome = expired_action(ack.action_id)
            result.rejected.append(Rejected(record, Rejection(outcome.reason, outcome.error)))
        else:
            result.acks.append(outcome)

    def _release_request_taker(self, requester: str | None) -> Callable[[InputRecord, bytes, BatchResult], None]:
        """The handler of one release-requests topic: ``requester`` is whom it authenticates (None: nobody)."""

        def take(record: InputRecord, raw: bytes, result: BatchResult) -> None:
            max_bytes = self.settings.max_message_bytes
            request = decode_release_request(
                raw, max_bytes, received_at_ms=record.timestamp, authenticated_as=requester,
                signed_by=self.ack_authentication.signed_by_partner,
            )  # fmt: skip
            if isinstance(request, Rejection):
                result.rejected.append(Rejected(record, request))
            else:
                result.release_requests.append(request)

        return take

    def decide(self, now_ms: int, result: BatchResult) -> None:
        """Re-trace what changed, issue the orders whose content changed, then decide the release requests."""
        freezes, telecom = self._wanted(now_ms)
        arrival = self._report_arrival
        suspensions = self.releases.uphold(telecom.suspensions, arrival, now_ms)
        result.suspensions.extend(ranked(self.actions.settle(suspensions, now_ms)))
        result.warnings.extend(self.actions.settle(telecom.warnings, now_ms))
        result.orders.extend(ranked(self.actions.settle(self.releases.uphold(freezes, arrival, now_ms), now_ms)))
        for request in result.release_requests:
            self._decide_release(request, now_ms, result)
        self._track(result.actions)  # nothing is escalated here, so these are this batch's orders
        self._throttle(result, now_ms)

    def _decide_release(self, request: ReleaseRequest, now_ms: int, result: BatchResult) -> None:
        """Answer one release request; a grant's released version goes out with the batch's orders."""
        decision = self.releases.already_granted(request)
        if decision is None:
            action = self.actions.last(request.action_id)
            decision = self.releases.refusal(request, action, self._report_arrival)
            if decision is not None and decision.reason == "unknown_action":
                war_room, requester = self.releases.war_room, request.requester
                if self.actions.retired(request.action_id, lambda to: requester in (war_room, partner_id(to))):
                    decision = replace(decision, reason="expired_action")
        if decision is None:
            released = self.actions.withdraw(request.action_id, now_ms, appeal_reason(request))
            assert released is not None  # refusal() checked that its last version is active
            decision = self.releases.granted(request, released, now_ms)
            if isinstance(released, FreezeOrder):
                result.orders.append(released)
            else:
                result.suspensions.append(cast(SuspensionOrder, released))
        result.answers.append(decision)

    def _as_decided(self, action: FreezeOrder | SuspensionOrder) -> FreezeOrder | SuspensionOrder:
        """A held-back version as the action book holds it: after a restart, rebuilt with its full lists."""
        last = self.actions.last(action.action_id)
        return (
            cast(FreezeOrder | SuspensionOrder, last) if last is not None and last.version == action.version else action
        )

    def _report_arrival(self, report_id: str) -> int | None:
        """When the revision in force of a report reached the broker; None if it is not in force."""
        report = self.revisions.get(report_id)
        return report.received_at_ms if report is not None else None

    def _throttle(self, result: BatchResult, now_ms: int) -> None:
        """The circuit breaker's say: what goes out now stays in the result; the rest waits, persisted."""
        admission = self.breaker.admit(result.actions, now_ms)
        sent = {(a.action_id, a.version) for a in admission.sent}
        fresh = {(a.action_id, a.version) for a in result.actions}
        result.orders = [a for a in result.orders if (a.action_id, a.version) in sent]
        result.suspensions = [a for a in result.suspensions if (a.action_id, a.version) in sent]
        result.escalated = [a for a in result.escalated if (a.action_id, a.version) in sent]
        result.unheld = [a for a in result.unheld if (a.action_id, a.version) in sent]
        result.unheld.extend(self._as_decided(a) for a in admission.sent if (a.action_id, a.version) not in fresh)
        result.held.extend(admission.newly_held)
        result.tombstones.extend(admission.unheld)

    def restore(self, action: IssuedAction) -> None:
        """Start-up recovery: an action already on its topic, as the action book and the lifecycle last saw it."""
        self.actions.restore(action)
        if not isinstance(action, WarningOrder):  # warnings have no acks or SLA
            self._track([action])

    def restore_held(self, action: FreezeOrder | SuspensionOrder) -> None:
        """Start-up recovery, after ``restore``: a version the circuit breaker held back, unless one went out since."""
        last = self.actions.last(action.action_id)
        if last is None or last.version < action.version:
            self.restore(action)
            self.breaker.hold(action)

    def restore_grant(self, grant: Grant) -> None:
        """Start-up recovery: a release granted on appeal, read back from the answers topic."""
        self.releases.restore(grant)

    def rebuild(self, now_ms: int) -> None:
        """After replaying the inputs: recompute every decision and match it to what was restored, issuing nothing.

        Whatever differs belongs to a batch that was published but not committed; it is
        redelivered next and decided again. Then what had expired is forgotten again, before
        anything could escalate or re-decide it.
        """
        freezes, telecom = self._wanted(now_ms)
        self.actions.adopt([*freezes, *telecom.suspensions, *telecom.warnings])
        self.expire(now_ms)

    def expire(self, now_ms: int) -> ExpiryCounts:
        """Forget what is past its retention (README, *What expires, and when*), issuing and deciding nothing.

        Reports first: what the telecom correlation, the freeze book and the action book keep
        follows from which reports expired, so an action a report in force stands behind is never
        touched. The lifecycle forgets what the action book forgot.
        """
        settings = self.settings
        expired = self.revisions.expire(now_ms)
        holdings = 0
        if self.trail.forget_reports(expired):
            # The traces lose the expired reports' money now; orders follow when something next touches
            # them, as after a restart: an order renewed by a later report keeps what it said until then.
            holdings = self.freezes.take_quietly(self.trail.retrace(), self.revisions)
        self.telecom.forget_reports(expired)
        holdings += self.freezes.forget(self.revisions.__contains__)
        actions = self.actions.forget(
            self.revisions.expired,
            unseen_before_ms=now_ms - settings.report_retention_ms,
            released_before_ms=now_ms - settings.expiry_grace_ms,
        )
        self.lifecycle.forget(actions)
        self.releases.forget(actions)
        self.breaker.forget(actions)
        return ExpiryCounts(
            transactions=self.trail.evict(),
            reports=len(expired),
            telecom_events=self.telecom.forget_events(),
            holdings=holdings,
            actions=len(actions),
        )

    def escalate(self, now_ms: int) -> BatchResult:
        """Re-issue every action that missed its SLA, with raised priority."""
        result = BatchResult()
        for action_id in self.lifecycle.due(now_ms):
            order = self.actions.escalate(action_id, now_ms)
            if order is not None:  # only freezes and suspensions are tracked, so only they fall due
                result.escalated.append(cast(FreezeOrder | SuspensionOrder, order))
        self._track(result.escalated)
        self._throttle(result, now_ms)
        return result

    def tick(self, now_ms: int) -> BatchResult:
        """What the clock alone issues: escalations, releases of expired holds, held-back actions the window allows."""
        result = self.escalate(now_ms)
        released: list[FreezeOrder] = self.actions.settle(expired_holds(self.actions.live("freeze"), now_ms), now_ms)
        expired = BatchResult(orders=released)
        self._track(expired.orders)
        self._throttle(expired, now_ms)
        drained = self.breaker.drain(now_ms)
        result.orders.extend(expired.orders)
        result.unheld.extend([*expired.unheld, *map(self._as_decided, drained.sent)])
        result.held.extend(expired.held)
        result.tombstones.extend([*expired.tombstones, *drained.unheld])
        return result

    def _wanted(self, now_ms: int) -> tuple[list[FreezeOrder | Withdrawal], TelecomDecisions]:
        """What every freeze, suspension and warning touched since the last call should say now."""
        traces = self.trail.retrace()
        self.telecom.add_accounts(self.trail.drain_new_accounts())
        telecom = self.telecom.decide(now_ms)
        freezes = self.freezes.update(traces, telecom.links, self.revisions, now_ms) if traces or telecom.links else []
        return freezes, telecom

    def _track(self, actions: Iterable[FreezeOrder | SuspensionOrder]) -> None:
        """The one path into the lifecycle: every version the action book issues, and every one restored."""
        for action in actions:
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


def _ms(duration: timedelta) -> int:
    return int(duration.total_seconds() * 1000)
