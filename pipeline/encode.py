"""Domain results to wire bytes (and back, for start-up recovery), through the schemas' models.

Every message leaves here at most ``max_action_bytes`` long, however many victims fed it. A
freeze action lists at most ``max_trail_steps`` trail steps (half the largest, the rest the most
recent) and ``max_listed_ids`` report and txn ids, with their totals and the digest of the full
evidence; suspensions and warnings list at most ``max_listed_ids`` ids, with their totals and the
digest of the full lists. A message still too large is encoded again with every limit halved until
it fits; a dead letter keeps only the beginning of an original too large to carry whole.
"""

from __future__ import annotations

import base64
import heapq
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, TypeVar

import orjson
from pydantic import BaseModel

from pipeline.errors import MessageTooLargeError
from processors.freeze_orders import FreezeOrder
from processors.money_trail import TrailStep
from processors.records import AccountKey
from processors.release import Grant, ReleaseDecision
from processors.telecom import SuspensionOrder, WarningOrder
from schemas.actions import DeadLetter, FreezeAction, ReleaseAnswer, SuspensionAction, VictimWarning
from schemas.decode import Rejection
from schemas.events import AccountRef
from schemas.fields import format_minor_units, to_minor_units
from schemas.signing import Signer

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MILLISECOND = timedelta(milliseconds=1)
STEP_REPORT_IDS = 10  # report ids listed per trail step: the lowest
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class ActionLimits:
    """How much evidence one message lists, and how large any published message may be (``Settings``)."""

    max_trail_steps: int
    max_listed_ids: int
    max_action_bytes: int

    def halved(self) -> ActionLimits | None:
        """The limits to try when a message does not fit; None once the lists are already empty."""
        if self.max_trail_steps == 0 and self.max_listed_ids == 0:
            return None
        return replace(self, max_trail_steps=self.max_trail_steps // 2, max_listed_ids=self.max_listed_ids // 2)


def fitted(encode: Callable[[ActionLimits], bytes], limits: ActionLimits, what: str) -> bytes:
    """``encode(limits)``, with the limits halved until the message is at most ``max_action_bytes``."""
    current = limits
    while len(value := encode(current)) > limits.max_action_bytes:
        smaller = current.halved()
        if smaller is None:
            raise MessageTooLargeError(
                f"{what} is {len(value)} bytes with no ids or trail steps listed; "
                f"max_action_bytes is {limits.max_action_bytes}"
            )
        current = smaller
    return value


def listed_trail(trail: tuple[TrailStep, ...], limit: int) -> tuple[TrailStep, ...]:
    """The steps an action lists: the whole trail, or ``limit`` of them in time order (at, txn_id).

    Half the slots go to the steps that carried the most tainted money (the earlier one on a tie),
    the rest to the most recent steps not already chosen.
    """
    if len(trail) <= limit:
        return trail

    def when(i: int) -> tuple[int, str, int]:
        return trail[i].at_ms, trail[i].txn_id, i

    by_time = sorted(range(len(trail)), key=when)
    chosen = set(heapq.nsmallest(limit // 2, by_time, key=lambda i: (-trail[i].tainted_amount, when(i))))
    for index in reversed(by_time):
        if len(chosen) >= limit:
            break
        chosen.add(index)
    return tuple(trail[i] for i in by_time if i in chosen)


def _time(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _account(key: AccountKey) -> dict[str, str]:
    kind, institution, account = key
    return {"institution": institution, "account": account, "kind": kind}


def _step(step: TrailStep) -> dict[str, Any]:
    """A trail step's fields: ``signed_json`` validates them with the rest of the action (``schemas.actions``)."""
    listed = heapq.nsmallest(STEP_REPORT_IDS, step.report_ids)
    return {
        "txn_id": step.txn_id,
        "report_id": listed[0] if listed else "",
        "report_ids": listed,
        "hop": step.hop,
        "from_account": _account(step.source),
        "to_account": _account(step.target),
        "tainted_amount": format_minor_units(step.tainted_amount, step.currency),
        "at": _time(step.at_ms),
    }


def signed_json(model: type[BaseModel], payload: dict[str, Any], signer: Signer, addressee: str) -> bytes:
    """Validate against the contract, then sign exactly the JSON the consumer will parse, ``kid`` included."""
    wire = model.model_validate({**payload, "kid": signer.kid_for(addressee), "signature": ""}).model_dump(mode="json")
    del wire["signature"]
    wire["signature"] = signer.signature(wire, addressee)
    return orjson.dumps(wire)


def freeze_action_payload(order: FreezeOrder, limits: ActionLimits) -> dict[str, Any]:
    """The action before signing, listing as much of the evidence as ``limits`` allow."""
    trail_steps_total = len(order.trail) if order.trail_steps_total < 0 else order.trail_steps_total

    def money(minor: int) -> str:
        return format_minor_units(minor, order.currency)

    return {
        "action_id": order.action_id,
        "version": order.version,
        "addressee": order.addressee,
        "status": order.status,
        "target": _account(order.target),
        "hold_amount": money(order.hold),
        "currency": order.currency,
        "priority": order.priority,
        "hop": order.hop,
        "tainted_received": money(order.received),
        "tainted_moved_on": money(order.moved_on),
        "report_ids": list(order.report_ids[: limits.max_listed_ids]),
        "report_ids_total": len(order.report_ids),
        "txn_ids": list(order.txn_ids[: limits.max_listed_ids]),
        "txn_ids_total": len(order.txn_ids),
        "reasons": list(order.reasons),
        "trail": [_step(step) for step in listed_trail(order.trail, limits.max_trail_steps)],
        "trail_steps_total": trail_steps_total,
        "trail_digest": order.evidence_digest,
        "issued_at": _iso(order.issued_at_ms),
        "report_received_at": _iso(order.report_received_at_ms),
        "hold_expires_at": _iso(order.hold_expires_at_ms),
        "escalation": order.escalation,
    }


def encode_freeze_action(
    order: FreezeOrder, signer: Signer, limits: ActionLimits, view: Callable[[dict[str, Any]], dict[str, Any]] = dict
) -> tuple[bytes, bytes]:
    """(key, value): keyed by ``action_id``, so every version of an order lands on one partition, in order, and
    compaction keeps the latest version of each action (a target holding money in two currencies has two).

    ``view`` shapes the action for its reader before it is signed: the shared topic's is the action
    itself; the addressee's copy (``pipeline.partners.addressee_freeze_view``) differs, and so
    carries its own signature.
    """
    value = fitted(
        lambda bounds: signed_json(FreezeAction, view(freeze_action_payload(order, bounds)), signer, order.addressee),
        limits,
        f"freeze action {order.action_id} version {order.version}",
    )
    return order.action_id.encode(), value


def restore_freeze_order(raw: bytes) -> FreezeOrder:
    """The order behind a freeze action already on the topic, to compare fingerprints after a restart.

    The fingerprint is exact: it holds the evidence digest, not the lists. From a bounded action the
    lists are only the listed part, and ``trail_steps_total`` says how long the full trail is.
    """
    action = _read_issued(FreezeAction, raw)

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
                step.txn_id, tuple(step.report_ids), step.hop, account(step.from_account), account(step.to_account),
                minor(step.tainted_amount), action.currency, _ms(step.at),
            )
            for step in action.trail
        ),
        issued_at_ms=_ms(action.issued_at),
        report_received_at_ms=_ms(action.report_received_at),
        hold_expires_at_ms=_ms(action.hold_expires_at),
        evidence_digest=action.trail_digest,
        escalation=action.escalation,
        trail_steps_total=action.trail_steps_total if len(action.trail) < action.trail_steps_total else -1,
    )  # fmt: skip


def suspension_action_payload(order: SuspensionOrder, limits: ActionLimits) -> dict[str, Any]:
    return {
        "action_id": order.action_id,
        "version": order.version,
        "status": order.status,
        "target_type": order.target_type,
        "target": order.target,
        "addressee": order.addressee,
        "priority": order.priority,
        "reasons": list(order.reasons),
        "report_ids": list(order.report_ids[: limits.max_listed_ids]),
        "report_ids_total": len(order.report_ids),
        "evidence": list(order.evidence[: limits.max_listed_ids]),
        "evidence_total": len(order.evidence),
        "evidence_digest": order.evidence_digest,
        "issued_at": _iso(order.issued_at_ms),
        "report_received_at": _iso(order.report_received_at_ms),
        "escalation": order.escalation,
    }


def encode_suspension_action(order: SuspensionOrder, signer: Signer, limits: ActionLimits) -> tuple[bytes, bytes]:
    value = fitted(
        lambda bounds: signed_json(SuspensionAction, suspension_action_payload(order, bounds), signer, order.addressee),
        limits,
        f"suspension {order.action_id} version {order.version}",
    )
    return f"{order.target_type}:{order.target}".encode(), value


def restore_suspension(raw: bytes) -> SuspensionOrder:
    """The order behind a suspension already on the topic, to compare fingerprints after a restart.

    The fingerprint is exact: it holds the evidence digest from the wire, not the lists, which from a
    bounded action are only the listed part.
    """
    action = _read_issued(SuspensionAction, raw)
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
        evidence_digest=action.evidence_digest,
        escalation=action.escalation,
        status=action.status,
    )


def victim_warning_payload(order: WarningOrder, limits: ActionLimits) -> dict[str, Any]:
    return {
        "warning_id": order.warning_id,
        "version": order.version,
        "status": order.status,
        "msisdn": order.msisdn,
        "operator": order.operator,
        "scammer_msisdn": order.scammer_msisdn,
        "last_contact_at": _iso(order.last_contact_at_ms),
        "report_ids": list(order.report_ids[: limits.max_listed_ids]),
        "report_ids_total": len(order.report_ids),
        "evidence_digest": order.evidence_digest,
        "issued_at": _iso(order.issued_at_ms),
    }


def encode_victim_warning(order: WarningOrder, signer: Signer, limits: ActionLimits) -> tuple[bytes, bytes]:
    """Keyed by the warned number; signed for the operator that delivers the warning."""
    value = fitted(
        lambda bounds: signed_json(VictimWarning, victim_warning_payload(order, bounds), signer, order.operator),
        limits,
        f"warning {order.warning_id} version {order.version}",
    )
    return order.msisdn.encode(), value


def restore_warning(raw: bytes) -> WarningOrder:
    """The order behind a warning already on the topic; as for suspensions, the digest pins the full list."""
    warning = _read_issued(VictimWarning, raw)
    return WarningOrder(
        warning_id=warning.warning_id,
        version=warning.version,
        msisdn=warning.msisdn,
        operator=warning.operator,
        scammer_msisdn=warning.scammer_msisdn,
        last_contact_at_ms=_ms(warning.last_contact_at),
        report_ids=tuple(warning.report_ids),
        issued_at_ms=_ms(warning.issued_at),
        evidence_digest=warning.evidence_digest,
        status=warning.status,
    )


def _read_issued(model: type[M], raw: bytes) -> M:
    """An action or warning read back from its topic; those issued before signatures named their key have no kid."""
    return model.model_validate({"kid": "", **orjson.loads(raw)})


def encode_release_answer(decision: ReleaseDecision, now_ms: int, signer: Signer) -> tuple[bytes, bytes]:
    """Keyed by request_id; signed as the requester's actions are."""
    request = decision.request
    payload = {
        "request_id": request.request_id,
        "action_id": request.action_id,
        "requester": request.requester,
        "decision": "granted" if decision.granted else "refused",
        "reason": decision.reason,
        "explanation": decision.explanation,
        "released_version": decision.released_version,
        "decided_at": _time(now_ms),
    }
    return request.request_id.encode(), signed_json(ReleaseAnswer, payload, signer, request.requester)


def restore_grant(raw: bytes) -> Grant | None:
    """The grant behind an answer already on its topic (start-up recovery); None for a refusal."""
    answer = _read_issued(ReleaseAnswer, raw)
    if answer.decision != "granted" or answer.released_version is None:
        return None
    return Grant(
        action_id=answer.action_id,
        request_id=answer.request_id,
        requester=answer.requester,
        granted_at_ms=_ms(answer.decided_at),
        version=answer.released_version,
    )


def _iso(ms: int) -> str:
    return _time(ms).isoformat().replace("+00:00", "Z")


def _ms(moment: datetime) -> int:
    return (moment - EPOCH) // MILLISECOND


def encode_dead_letter(
    topic: str,
    partition: int,
    offset: int,
    raw: bytes | None,
    rejection: Rejection,
    now_ms: int,
    limits: ActionLimits,
    partner: str | None = None,
) -> tuple[bytes, bytes]:
    """Keyed by the source topic. An original too large to carry whole is cut to its start, and ``error`` says so.

    ``partner``: the copy for that partner, ``raw`` being what it may see (``pipeline.partners``).
    """
    payload = raw or b""
    kept = len(payload)
    while True:
        value = _dead_letter(topic, partition, offset, payload, kept, rejection, now_ms, partner)
        if len(value) <= limits.max_action_bytes:
            return topic.encode(), value
        if kept == 0:
            raise MessageTooLargeError(
                f"the dead letter for {topic}/{partition}@{offset} is {len(value)} bytes with no payload; "
                f"max_action_bytes is {limits.max_action_bytes}"
            )
        kept = min(kept, limits.max_action_bytes) // 2


def _dead_letter(
    topic: str,
    partition: int,
    offset: int,
    payload: bytes,
    kept: int,
    rejection: Rejection,
    now_ms: int,
    partner: str | None,
) -> bytes:
    """The dead letter carrying the first ``kept`` bytes of ``payload`` (as text if all of it is UTF-8)."""
    encoding: Literal["utf-8", "base64"]
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError:
        encoding, text, carried = "base64", base64.b64encode(payload[:kept]).decode("ascii"), kept
    else:  # a cut may split a character: its bytes are dropped
        encoding, text = "utf-8", payload[:kept].decode("utf-8", errors="ignore")
        carried = len(text.encode())
    error = rejection.error
    if carried < len(payload):
        error += f" (payload: the first {carried} of the message's {len(payload)} bytes; all of it would not fit)"
    letter = DeadLetter(
        source_topic=topic,
        partition=partition,
        offset=offset,
        reason=rejection.reason,
        error=error,
        payload=text,
        payload_encoding=encoding,
        received_at=_time(now_ms),
        partner=partner,
    )
    return letter.model_dump_json().encode()
