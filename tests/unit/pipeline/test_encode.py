"""Wire encoding of actions and dead letters, and the round trip recovery depends on."""

from __future__ import annotations

import base64
from types import SimpleNamespace

import orjson

from pipeline.encode import encode_dead_letter, encode_freeze_action, restore_freeze_order
from pipeline.interception import Interception
from pipeline.settings import Settings
from schemas.actions import DeadLetter, FreezeAction
from schemas.decode import Rejection
from schemas.signing import SigningKeys, verify

ACCOUNT = {"institution": "KBANK", "account": "1"}


def _record(topic: str, offset: int, value: dict) -> SimpleNamespace:
    return SimpleNamespace(
        topic=topic, partition=0, offset=offset, timestamp=1_795_400_000_000, value=orjson.dumps(value)
    )


def _orders():
    paid = {"txn_id": "p1", "from_account": ACCOUNT, "to_account": {"institution": "SCB", "account": "m1"},
            "amount": "1000.50", "currency": "THB", "executed_at": "2026-11-23T10:00:00Z"}  # fmt: skip
    onward = {**paid, "txn_id": "p2", "from_account": paid["to_account"],
              "to_account": {"institution": "W", "account": "w", "kind": "ewallet"}, "amount": 400,
              "executed_at": "2026-11-23T10:05:00Z"}  # fmt: skip
    report = {"report_id": "R1", "reported_at": "2026-11-24T04:00:00Z", "victim_id": "v", "country": "TH",
              "scam_type": "romance", "transfers": [{**paid, "sent_at": paid["executed_at"]}]}  # fmt: skip
    records = [_record("bank-transactions", 0, paid), _record("bank-transactions", 1, onward),
               _record("victim-reports", 0, report)]  # fmt: skip
    return Interception(Settings()).process(records, now_ms=1_795_500_000_000).orders


KEYS = SigningKeys(keys={"SCB": b"scb-key"}, default=b"default-key")


def test_a_freeze_action_reads_back_to_the_same_fingerprint_recovery_compares() -> None:
    orders = _orders()
    assert len(orders) == 2
    for order in orders:
        key, value = encode_freeze_action(order, KEYS)
        action = FreezeAction.model_validate_json(value)
        assert key == f"{order.target[0]}:{order.target[1]}:{order.target[2]}".encode()
        restored = restore_freeze_order(value)
        assert (restored.action_id, restored.version, restored.fingerprint) == (
            order.action_id,
            order.version,
            order.fingerprint,
        )
        assert restored.trail == order.trail
        assert action.trail and action.trail[0].hop == 0


def test_every_emitted_action_verifies_with_its_addressees_key_only() -> None:
    for order in _orders():
        _, value = encode_freeze_action(order, KEYS)
        own_key = KEYS.for_addressee(order.addressee)
        assert verify(value, own_key)
        assert not verify(value, b"someone-else")
        tampered = orjson.loads(value)
        tampered["hold_amount"] = "999999.00"
        assert not verify(orjson.dumps(tampered), own_key)


def test_amounts_go_out_as_decimal_strings_in_the_currency_minor_unit() -> None:
    by_account = {o.target[2]: FreezeAction.model_validate_json(encode_freeze_action(o, KEYS)[1]) for o in _orders()}
    assert by_account["m1"].hold_amount == "600.50"
    assert by_account["m1"].tainted_received == "1000.50"
    assert by_account["w"].hold_amount == "400.00"


def test_dead_letters_keep_the_original_bytes_as_text_or_base64() -> None:
    rejection = Rejection("malformed_json", "the message is not valid JSON")
    _, text = encode_dead_letter("bank-transactions", 2, 17, b'{"a":', rejection, 0)
    _, binary = encode_dead_letter("bank-transactions", 2, 18, b"\xff\xfe", rejection, 0)
    as_text, as_base64 = DeadLetter.model_validate_json(text), DeadLetter.model_validate_json(binary)
    assert (as_text.payload, as_text.payload_encoding, as_text.offset) == ('{"a":', "utf-8", 17)
    assert base64.b64decode(as_base64.payload) == b"\xff\xfe" and as_base64.payload_encoding == "base64"
