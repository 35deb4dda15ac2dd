"""Raw Kafka bytes to domain records, or a rejection a partner can act on.

Nothing here raises on bad data: every message becomes either a record for the
processors or a ``Rejection`` that the pipeline turns into a dead letter.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import msgspec
from pydantic import BaseModel, ValidationError

from processors.records import AccountKey, Ack, ReleaseRequest, Report, TelecomEvent, Transfer, partner_id
from schemas.events import AccountRef, ActionAck, BankTransaction, ReportedTransfer, VictimReport
from schemas.events import ReleaseRequest as WireReleaseRequest
from schemas.events import TelecomEvent as WireTelecomEvent
from schemas.fast import AccountRefStruct, bank_transaction_decoder
from schemas.fields import FieldError, amount_in_minor_units, parse_currency, parse_timestamp_ms, to_minor_units

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: str
    error: str


def account_key(ref: AccountRef | AccountRefStruct) -> AccountKey:
    return (ref.kind, ref.institution, ref.account)


def decode_bank_transaction(raw: bytes, max_bytes: int) -> Transfer | Rejection:
    """Hot path first; the slow, authoritative decoder has the last word on whatever it declines."""
    if len(raw) > max_bytes:
        return _oversized(raw, max_bytes)
    transfer = decode_bank_transaction_fast(raw)
    if transfer is not None:
        return transfer
    checked = _validate(BankTransaction, raw)
    if isinstance(checked, Rejection):
        return checked
    return _transfer(checked, checked.txn_id, checked.executed_at)


# msgspec and pydantic's JSON parser disagree at the edges. In ignored fields msgspec lets
# through invalid UTF-8 (hence the decode to str first), numbers of over 4,300 digits (too
# long for FAST_PATH_MAX_BYTES) and nesting deeper than 200 (more than FAST_PATH_MAX_BRACKETS).
# It refuses NaN, Infinity and duplicate keys whose first value is invalid, which pydantic
# takes (the last key wins). The hot path declines all of these and pydantic decides.
FAST_PATH_MAX_BYTES = 4096
FAST_PATH_MAX_BRACKETS = 64


def decode_bank_transaction_fast(raw: bytes) -> Transfer | None:
    """msgspec checks the structure, the shared parsers check the values; ``None`` when it cannot vouch.

    It never accepts what ``BankTransaction`` rejects, and it declines valid messages only
    for the reasons above; tests/unit/schemas/test_fast_decoder.py holds it to that.
    """
    if len(raw) > FAST_PATH_MAX_BYTES or raw.count(b"{") + raw.count(b"[") > FAST_PATH_MAX_BRACKETS:
        return None
    try:
        wire = bank_transaction_decoder.decode(raw.decode())
        currency = parse_currency(wire.currency)
        return Transfer(
            txn_id=wire.txn_id,
            source=account_key(wire.from_account),
            target=account_key(wire.to_account),
            amount=amount_in_minor_units(wire.amount, currency),
            currency=currency,
            at_ms=parse_timestamp_ms(wire.executed_at),
        )
    except (UnicodeDecodeError, msgspec.ValidationError, msgspec.DecodeError, FieldError):
        return None


def decode_victim_report(raw: bytes, max_bytes: int, received_at_ms: int) -> Report | Rejection:
    if len(raw) > max_bytes:
        return _oversized(raw, max_bytes)
    checked = _validate(VictimReport, raw)
    if isinstance(checked, Rejection):
        return checked
    report = checked
    transfers = tuple(
        _transfer(sent, sent.txn_id or f"{report.report_id}#{index}", sent.sent_at)
        for index, sent in enumerate(report.transfers)
    )
    return Report(
        report_id=report.report_id,
        reported_at_ms=report.reported_at,
        received_at_ms=received_at_ms,
        victim_id=report.victim_id,
        country=report.country,
        scam_type=report.scam_type,
        transfers=transfers,
        scammer_phones=tuple(dict.fromkeys(report.scammer_phones)),
        scam_urls=tuple(dict.fromkeys(report.scam_urls)),
        revision=report.revision,
    )


def decode_telecom_event(raw: bytes, max_bytes: int) -> TelecomEvent | Rejection:
    if len(raw) > max_bytes:
        return _oversized(raw, max_bytes)
    event = _validate(WireTelecomEvent, raw)
    if isinstance(event, Rejection):
        return event
    return TelecomEvent(
        event_id=event.event_id,
        operator=event.operator,
        kind=event.kind,
        msisdn=event.msisdn,
        at_ms=event.occurred_at,
        counterparty_msisdn=event.counterparty_msisdn,
        registered_id=event.registered_id,
        imei=event.imei,
        ip=event.ip,
        cell_id=event.cell_id,
    )


def decode_action_ack(raw: bytes, max_bytes: int, received_at_ms: int) -> Ack | Rejection:
    if len(raw) > max_bytes:
        return _oversized(raw, max_bytes)
    ack = _validate(ActionAck, raw)
    if isinstance(ack, Rejection):
        return ack
    return Ack(
        action_id=ack.action_id,
        version=ack.version,
        addressee=ack.addressee,
        status=ack.status,
        amount_held=ack.amount_held,
        acked_at_ms=ack.acked_at,
        received_at_ms=received_at_ms,
        note=ack.note,
    )


def decode_release_request(
    raw: bytes,
    max_bytes: int,
    received_at_ms: int,
    authenticated_as: str | None,
    signed_by: Callable[[str, bytes], bool] = lambda requester, raw: False,
) -> ReleaseRequest | Rejection:
    """A request as authenticated: ``authenticated_as`` is the partner whose own topic carried it.

    None (the shared topic) authenticates the requester only by a signature: ``signed_by(requester,
    raw)`` says whether one of the requester's registered keys signed the raw message.
    """
    if len(raw) > max_bytes:
        return _oversized(raw, max_bytes)
    request = _validate(WireReleaseRequest, raw)
    if isinstance(request, Rejection):
        return request
    requester = partner_id(request.requester)
    if authenticated_as is None:
        if requester is None or not signed_by(requester, raw):
            return Rejection(
                "unauthenticated",
                f"the request is not signed by a key registered for {request.requester!r} (Ed25519, kid and "
                "signature as for acks): sign it, or send it on release-requests.<requester>",
            )
    elif requester != authenticated_as:
        return Rejection(
            "unauthenticated",
            f"requester: {request.requester!r} cannot ask on the topic of {authenticated_as!r}; "
            "use your own release-requests topic",
        )
    return ReleaseRequest(
        request_id=request.request_id,
        action_id=request.action_id,
        requester=requester,
        reason=request.reason,
        requested_at_ms=request.requested_at,
        received_at_ms=received_at_ms,
    )


def _transfer(money: BankTransaction | ReportedTransfer, txn_id: str, at_ms: int) -> Transfer:
    return Transfer(
        txn_id=txn_id,
        source=account_key(money.from_account),
        target=account_key(money.to_account),
        amount=to_minor_units(money.amount, money.currency),
        currency=money.currency,
        at_ms=at_ms,
    )


def _validate(model: type[M], raw: bytes) -> M | Rejection:
    try:
        return model.model_validate_json(raw)
    except ValidationError as error:
        return _rejection(error)


def _rejection(error: ValidationError) -> Rejection:
    problems = error.errors(include_url=False, include_input=False)
    if any(problem["type"] == "json_invalid" for problem in problems):
        return Rejection("malformed_json", "the message is not valid JSON (UTF-8): " + problems[0]["msg"])
    sentences = []
    for problem in problems[:5]:
        where = ".".join(str(part) for part in problem["loc"])
        message = problem["msg"].removeprefix("Value error, ")
        sentences.append(f"{where}: {message}" if where else message)
    more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
    return Rejection("invalid_event", "; ".join(sentences) + more)


def _oversized(raw: bytes, max_bytes: int) -> Rejection:
    return Rejection("oversized", f"the message is {len(raw)} bytes; the limit is {max_bytes}")
