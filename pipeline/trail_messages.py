"""The money trail's messages between workers, on the wire: many to one Kafka message.

A worker owning some trail partitions sends the others what their partitions must hear
(``processors.money_trail.Message``: feed records, claims, transfers told to accounts,
outflow contents and resets), and the case role the holdings that changed. Decoding gives
back exactly the tuples, frozensets and traces the trail compares, so what crossed the
broker is equal to what was delivered in process.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import msgspec

from processors.money_trail import CLAIM, FEED, FLOW, IN, OUT, RESET, Holding, HoldingTrace, Message, TrailStep
from processors.records import AccountKey

_Account = tuple[str, str, str]
_Record = tuple[int, _Account, _Account, int, str, str, bool]
_Step = tuple[str, int, _Account, _Account, int, str, int]
_Lot = tuple[int, frozenset[str], tuple[_Step, ...]]


# On the wire a message is the array its tuple is, kind first; these give msgspec the shape of each kind,
# so a whole Kafka message of them decodes in one pass.
class _Feed(msgspec.Struct, array_like=True, tag=FEED):
    txn_id: str
    record: _Record


class _Claim(msgspec.Struct, array_like=True, tag=CLAIM):
    report_id: str
    txn_id: str
    record: _Record | None


class _Out(msgspec.Struct, array_like=True, tag=OUT):
    account: _Account
    txn_id: str
    record: _Record | None
    named: frozenset[str]
    new: bool


class _In(_Out, tag=IN):
    pass


class _Flow(msgspec.Struct, array_like=True, tag=FLOW):
    target: _Account
    flow: tuple[str, _Account]
    content: tuple[_Lot, ...] | None


class _Reset(msgspec.Struct, array_like=True, tag=RESET):
    partition: int


_encode = msgspec.msgpack.Encoder().encode
_decode_batch = msgspec.msgpack.Decoder(list[_Feed | _Claim | _Out | _In | _Flow | _Reset]).decode
_astuple = msgspec.structs.astuple


class BadTrailMessage(ValueError):
    """A trail message this worker cannot read: written by a newer version, or damaged."""


MESSAGES_PER_RECORD = 2_000  # about 250 kB a Kafka message: well under the broker's and the producer's limits


def encode_messages(messages: Sequence[Message]) -> bytes:
    return _encode(messages)


def encode_records(messages: Sequence[Message]) -> list[bytes]:
    """The messages for one partition as Kafka messages of at most ``MESSAGES_PER_RECORD`` each, in order."""
    return [
        _encode(messages[start : start + MESSAGES_PER_RECORD]) for start in range(0, len(messages), MESSAGES_PER_RECORD)
    ]


def decode_messages(raw: bytes) -> list[Message]:
    try:
        batch = _decode_batch(raw)
    except msgspec.DecodeError as error:  # a ValidationError too
        raise BadTrailMessage(f"unreadable trail message: {error}") from None
    return [(message.__struct_config__.tag, *_astuple(message)) for message in batch]


_Holding = tuple[_Account, str]
_TrailStep = tuple[str, tuple[str, ...], int, _Account, _Account, int, str, int]
_Trace = tuple[_Account, str, int, int, int, int, int, tuple[str, ...], tuple[_TrailStep, ...], str | None, str]


class _Holdings(msgspec.Struct, array_like=True):
    partition: int
    reset: bool
    changes: list[tuple[_Holding, _Trace | None]]
    accounts: list[_Account] = []  # absent from what workers wrote before accounts went with the holdings


_decode_holdings = msgspec.msgpack.Decoder(_Holdings).decode


class Holdings(NamedTuple):
    """One ``trail-holdings`` message: a trail partition's changed holdings, and the accounts its workers saw first."""

    partition: int
    reset: bool
    changes: list[tuple[Holding, HoldingTrace | None]]
    accounts: list[AccountKey]


def encode_holdings(
    partition: int,
    reset: bool,
    changes: Sequence[tuple[Holding, HoldingTrace | None]],
    accounts: Sequence[AccountKey] = (),
) -> bytes:
    """A trail partition's changed holdings, and its accounts the bank feed just showed, for the case role
    (``processors.trail_view``): the accounts are for payment-proxy links, which the case role's telecom makes."""
    changed = [(holding, None if trace is None else _trace(trace)) for holding, trace in changes]
    return _encode((partition, reset, changed, accounts))


def decode_holdings(raw: bytes) -> Holdings:
    try:
        message = _decode_holdings(raw)
    except msgspec.DecodeError as error:
        raise BadTrailMessage(f"unreadable holdings: {error}") from None
    changes = [(holding, None if trace is None else _holding_trace(trace)) for holding, trace in message.changes]
    return Holdings(message.partition, message.reset, changes, message.accounts)


def _trace(trace: HoldingTrace) -> tuple[object, ...]:
    steps = tuple(
        (s.txn_id, s.report_ids, s.hop, s.source, s.target, s.tainted_amount, s.currency, s.at_ms) for s in trace.trail
    )
    return (trace.account, trace.currency, trace.received, trace.moved_on, trace.hop, trace.first_arrival_ms,
            trace.last_arrival_ms, trace.report_ids, steps, trace.hub_reason, trace.digest)  # fmt: skip


def _holding_trace(fields: _Trace) -> HoldingTrace:
    account, currency, received, moved_on, hop, first_ms, last_ms, report_ids, steps, hub, digest = fields
    trail = tuple(TrailStep(*step) for step in steps)
    return HoldingTrace(account, currency, received, moved_on, hop, first_ms, last_ms, report_ids, trail, hub, digest)
