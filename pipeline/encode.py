"""Domain results to wire bytes (and back, for start-up recovery), through the schemas' models."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
from pydantic import BaseModel

from processors.freeze_orders import FreezeOrder
from processors.money_trail import TrailStep
from processors.records import AccountKey, account_label
from processors.telecom import SuspensionOrder, WarningOrder
from schemas.actions import DeadLetter, FreezeAction, SuspensionAction, VictimWarning
from schemas.actions import TrailStep as WireTrailStep
from schemas.decode import Rejection
from schemas.events import AccountRef
from schemas.fields import format_minor_units, to_minor_units
from schemas.signing import SigningKeys, sign

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MILLISECOND = timedelta(milliseconds=1)


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


def signed_json(model: type[BaseModel], payload: dict[str, Any], keys: SigningKeys, addressee: str) -> bytes:
    """Validate against the contract, then sign exactly the JSON the consumer will parse."""
    wire = model.model_validate({**payload, "signature": ""}).model_dump(mode="json")
    del wire["signature"]
    wire["signature"] = sign(wire, keys.for_addressee(addressee))
    return orjson.dumps(wire)


def freeze_action_payload(order: FreezeOrder) -> dict[str, Any]:
    def money(minor: int) -> str:
        return format_minor_units(minor, order.currency)

    return {
        "action_id": order.action_id,
        "version": order.version,
        "addressee": order.addressee,
        "status": order.status,
        "target": _account(order.target).model_dump(mode="json"),
        "hold_amount": money(order.hold),
        "currency": order.currency,
        "priority": order.priority,
        "hop": order.hop,
        "tainted_received": money(order.received),
        "tainted_moved_on": money(order.moved_on),
        "report_ids": list(order.report_ids),
        "txn_ids": list(order.txn_ids),
        "reasons": list(order.reasons),
        "trail": [_step(step).model_dump(mode="json") for step in order.trail],
        "issued_at": _iso(order.issued_at_ms),
        "report_received_at": _iso(order.report_received_at_ms),
        "hold_expires_at": _iso(order.hold_expires_at_ms),
        "escalation": order.escalation,
    }


def encode_freeze_action(order: FreezeOrder, keys: SigningKeys) -> tuple[bytes, bytes]:
    """(key, value): keyed by target so every version of an order lands on one partition, in order."""
    value = signed_json(FreezeAction, freeze_action_payload(order), keys, order.addressee)
    return account_label(order.target).encode(), value


def restore_freeze_order(raw: bytes) -> FreezeOrder:
    """The order behind a freeze action already on the topic, to compare fingerprints after a restart."""
    action = FreezeAction.model_validate_json(raw)

    def minor(text: str) -> int:
        return to_minor_units(Decimal(text), action.currency)

    def account(ref: AccountRef) -> AccountKey:
        return (ref.kind, ref.institution, ref.account)

    return FreezeOrder(
        action_id=action.action_id,
        version=action.version,
        status=action.status,
        target=account(action.target),
        currency=action.currency,
        hold=minor(action.hold_amount),
        priority=action.priority,
        hop=action.hop,
        received=minor(action.tainted_received),
        moved_on=minor(action.tainted_moved_on),
        report_ids=tuple(action.report_ids),
        txn_ids=tuple(action.txn_ids),
        reasons=tuple(action.reasons),
        trail=tuple(
            TrailStep(
                step.txn_id, step.report_id, step.hop, account(step.from_account), account(step.to_account),
                minor(step.tainted_amount), action.currency, _ms(step.at),
            )
            for step in action.trail
        ),
        issued_at_ms=_ms(action.issued_at),
        report_received_at_ms=_ms(action.report_received_at),
        hold_expires_at_ms=_ms(action.hold_expires_at),
        escalation=action.escalation,
    )  # fmt: skip


def suspension_action_payload(order: SuspensionOrder) -> dict[str, Any]:
    return {
        "action_id": order.action_id,
        "version": order.version,
        "status": order.status,
        "target_type": order.target_type,
        "target": order.target,
        "addressee": order.addressee,
        "priority": order.priority,
        "reasons": list(order.reasons),
        "report_ids": list(order.report_ids),
        "evidence": list(order.evidence),
        "issued_at": _iso(order.issued_at_ms),
        "report_received_at": _iso(order.report_received_at_ms),
        "escalation": order.escalation,
    }


def encode_suspension_action(order: SuspensionOrder, keys: SigningKeys) -> tuple[bytes, bytes]:
    value = signed_json(SuspensionAction, suspension_action_payload(order), keys, order.addressee)
    return f"{order.target_type}:{order.target}".encode(), value


def restore_suspension(raw: bytes) -> SuspensionOrder:
    """The order behind a suspension already on the topic, to compare fingerprints after a restart."""
    action = SuspensionAction.model_validate_json(raw)
    return SuspensionOrder(
        action_id=action.action_id,
        version=action.version,
        target_type=action.target_type,
        target=action.target,
        addressee=action.addressee,
        priority=action.priority,
        reasons=tuple(action.reasons),
        report_ids=tuple(action.report_ids),
        evidence=tuple(action.evidence),
        issued_at_ms=_ms(action.issued_at),
        report_received_at_ms=_ms(action.report_received_at),
        escalation=action.escalation,
        status=action.status,
    )


def victim_warning_payload(order: WarningOrder) -> dict[str, Any]:
    return {
        "warning_id": order.warning_id,
        "version": order.version,
        "status": order.status,
        "msisdn": order.msisdn,
        "operator": order.operator,
        "scammer_msisdn": order.scammer_msisdn,
        "last_contact_at": _iso(order.last_contact_at_ms),
        "report_ids": list(order.report_ids),
        "issued_at": _iso(order.issued_at_ms),
    }


def encode_victim_warning(order: WarningOrder, keys: SigningKeys) -> tuple[bytes, bytes]:
    """Keyed by the warned number; signed for the operator that delivers the warning."""
    return order.msisdn.encode(), signed_json(VictimWarning, victim_warning_payload(order), keys, order.operator)


def restore_warning(raw: bytes) -> WarningOrder:
    warning = VictimWarning.model_validate_json(raw)
    return WarningOrder(
        warning_id=warning.warning_id,
        version=warning.version,
        msisdn=warning.msisdn,
        operator=warning.operator,
        scammer_msisdn=warning.scammer_msisdn,
        last_contact_at_ms=_ms(warning.last_contact_at),
        report_ids=tuple(warning.report_ids),
        issued_at_ms=_ms(warning.issued_at),
        status=warning.status,
    )


def _iso(ms: int) -> str:
    return _time(ms).isoformat().replace("+00:00", "Z")


def _ms(moment: datetime) -> int:
    return (moment - EPOCH) // MILLISECOND


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
