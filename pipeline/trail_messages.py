"""The money trail's messages between workers, on the wire: many to one Kafka message.

A worker owning some trail partitions sends the others what their partitions must hear
(``processors.money_trail.Message``: feed records, claims, transfers told to accounts,
outflow contents and resets), and the case role the holdings that changed. Decoding gives
back exactly the tuples, frozensets and traces the trail compares, so what crossed the
broker is equal to what was delivered in process.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from processors.money_trail import CLAIM, FEED, FLOW, IN, OUT, RESET, Holding, HoldingTrace, Message, TrailStep

_Account = tuple[str, str, str]
_Record = tuple[int, _Account, _Account, int, str, str, bool]
_Step = tuple[str, int, _Account, _Account, int, str, int]
_Lot = tuple[int, frozenset[str], tuple[_Step, ...]]
_Told = tuple[str, _Account, str, _Record | None, frozenset[str], bool]

_encode = msgspec.msgpack.Encoder().encode
_decode_batch = msgspec.msgpack.Decoder(list[tuple[str, bytes]]).decode
_DECODERS: dict[str, msgspec.msgpack.Decoder[object]] = {
    FEED: msgspec.msgpack.Decoder(tuple[str, str, _Record]),
    CLAIM: msgspec.msgpack.Decoder(tuple[str, str, str, _Record | None]),
    OUT: msgspec.msgpack.Decoder(_Told),
    IN: msgspec.msgpack.Decoder(_Told),
    FLOW: msgspec.msgpack.Decoder(tuple[str, _Account, tuple[str, _Account], tuple[_Lot, ...] | None]),
    RESET: msgspec.msgpack.Decoder(tuple[str, int]),
}


class BadTrailMessage(ValueError):
    """A trail message this worker cannot read: written by a newer version, or damaged."""


def encode_messages(messages: Sequence[Message]) -> bytes:
    return _encode([(message[0], _encode(message)) for message in messages])


def decode_messages(raw: bytes) -> list[Message]:
    try:
        batch = _decode_batch(raw)
        return [_DECODERS[kind].decode(payload) for kind, payload in batch]  # type: ignore[misc]
    except KeyError as error:
        raise BadTrailMessage(f"unknown trail message kind {error.args[0]!r}") from None
    except msgspec.DecodeError as error:
        raise BadTrailMessage(f"unreadable trail message: {error}") from None


_Holding = tuple[_Account, str]
_TrailStep = tuple[str, tuple[str, ...], int, _Account, _Account, int, str, int]
_Trace = tuple[_Account, str, int, int, int, int, int, tuple[str, ...], tuple[_TrailStep, ...], str | None, str]
_decode_holdings = msgspec.msgpack.Decoder(tuple[int, bool, list[tuple[_Holding, _Trace | None]]]).decode


def encode_holdings(partition: int, reset: bool, changes: Sequence[tuple[Holding, HoldingTrace | None]]) -> bytes:
    """A trail partition's changed holdings, for the case role (``processors.trail_view``)."""
    return _encode(
        (partition, reset, [(holding, None if trace is None else _trace(trace)) for holding, trace in changes])
    )


def decode_holdings(raw: bytes) -> tuple[int, bool, list[tuple[Holding, HoldingTrace | None]]]:
    try:
        partition, reset, changes = _decode_holdings(raw)
    except msgspec.DecodeError as error:
        raise BadTrailMessage(f"unreadable holdings: {error}") from None
    return partition, reset, [(holding, None if trace is None else _holding_trace(trace)) for holding, trace in changes]


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
