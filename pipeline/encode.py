"""Domain results to wire bytes (and back, for start-up recovery), through the schemas' models."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from decimal import Decimal

from processors.freeze_orders import Fingerprint, FreezeOrder, order_fingerprint
from processors.money_trail import TrailStep
from processors.records import AccountKey, account_label
from schemas.actions import DeadLetter, FreezeAction
from schemas.actions import TrailStep as WireTrailStep
from schemas.decode import Rejection
from schemas.events import AccountRef
from schemas.fields import format_minor_units, to_minor_units


def _time(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _account(key: AccountKey) -> AccountRef:
    kind, institution, account = key
    return AccountRef(institution=institution, account=account, kind=kind)  # type: ignore[arg-type]


def _step(step: TrailStep) -> WireTrailStep:
    return WireTrailStep(
        txn_id=step.txn_id,
        report_id=step.report_id,
        hop=step.hop,
        from_account=_account(step.source),
        to_account=_account(step.target),
        tainted_amount=format_minor_units(step.tainted_amount, step.currency),
        at=_time(step.at_ms),
    )


def freeze_action(order: FreezeOrder) -> FreezeAction:
    money = lambda minor: format_minor_units(minor, order.currency)  # noqa: E731
    return FreezeAction(
        action_id=order.action_id,
        version=order.version,
        status=order.status,  # type: ignore[arg-type]
        target=_account(order.target),
        hold_amount=money(order.hold),
        currency=order.currency,
        priority=order.priority,
        hop=order.hop,
        tainted_received=money(order.received),
        tainted_moved_on=money(order.moved_on),
        report_ids=list(order.report_ids),
        txn_ids=list(order.txn_ids),
        reasons=list(order.reasons),
        trail=[_step(step) for step in order.trail],
        issued_at=_time(order.issued_at_ms),
        report_received_at=_time(order.report_received_at_ms),
        hold_expires_at=_time(order.hold_expires_at_ms),
    )


def encode_freeze_action(order: FreezeOrder) -> tuple[bytes, bytes]:
    """(key, value): keyed by target so every version of an order lands on one partition, in order."""
    return account_label(order.target).encode(), freeze_action(order).model_dump_json().encode()


def restore_fingerprint(raw: bytes) -> tuple[str, int, Fingerprint]:
    """(action_id, version, fingerprint) of an action already on the topic."""
    action = FreezeAction.model_validate_json(raw)
    minor = lambda text: to_minor_units(Decimal(text), action.currency)  # noqa: E731
    fingerprint = order_fingerprint(
        action.status,
        minor(action.hold_amount),
        action.priority,
        action.hop,
        minor(action.tainted_received),
        minor(action.tainted_moved_on),
        tuple(action.report_ids),
        tuple(action.txn_ids),
    )
    return action.action_id, action.version, fingerprint


def encode_dead_letter(
    topic: str, partition: int, offset: int, raw: bytes | None, rejection: Rejection, now_ms: int
) -> tuple[bytes, bytes]:
    payload = raw or b""
    try:
        text, encoding = payload.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        text, encoding = base64.b64encode(payload).decode("ascii"), "base64"
    letter = DeadLetter(
        source_topic=topic,
        partition=partition,
        offset=offset,
        reason=rejection.reason,
        error=rejection.error,
        payload=text,
        payload_encoding=encoding,  # type: ignore[arg-type]
        received_at=_time(now_ms),
    )
    return topic.encode(), letter.model_dump_json().encode()
