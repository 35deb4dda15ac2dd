"""Partner attribution of rejected input, and what of a message each partner may see."""

from __future__ import annotations

from types import SimpleNamespace

import orjson
import pytest

from pipeline.encode import encode_freeze_action
from pipeline.interception import Interception
from pipeline.partners import INPUT_SHAPES, addressee_freeze_view, dead_letter_copies, partner_name
from pipeline.pseudonyms import Pseudonyms
from pipeline.settings import Settings
from pipeline.topics import INPUT_TOPICS
from schemas.actions import FreezeAction
from schemas.signing import Ed25519Signer, verify_ed25519

PSEUDONYMS = Pseudonyms(b"war-room-key")
SIGNER = Ed25519Signer.development()
PUBLIC_KEYS = {SIGNER.kid: SIGNER.private_key.public_key()}
LIMITS = Settings().action_limits
VICTIM = {"institution": "KBANK", "account": "kb-111", "kind": "bank"}
MULE = {"institution": "SCB", "account": "scb-222", "kind": "bank"}
WALLET = {"institution": "W", "account": "w-333", "kind": "ewallet"}


def _copies(topic: str, message: object, prefix: str = "") -> dict[str, dict]:
    raw = message if isinstance(message, bytes) else orjson.dumps(message)
    return {partner: orjson.loads(payload) for partner, payload in dead_letter_copies(topic, raw, prefix, PSEUDONYMS)}


def _transaction(**changes: object) -> dict:
    return {"txn_id": "t-1", "from_account": VICTIM, "to_account": MULE, "amount": "100.00", "currency": "THB",
            "executed_at": "2026-11-23T10:00:00Z", **changes}  # fmt: skip


# --- dead letters: whose, and what each copy carries ---


def test_a_rejected_transfer_goes_to_both_banks_each_seeing_only_its_own_account_in_clear() -> None:
    copies = _copies("bank-transactions", _transaction(amount="-5"))
    assert set(copies) == {"KBANK", "SCB"}
    kbank, scb = copies["KBANK"], copies["SCB"]
    assert kbank["from_account"] == VICTIM and kbank["to_account"]["account"] == PSEUDONYMS.of(
        ("bank", "SCB", "scb-222")
    )
    assert scb["to_account"] == MULE and scb["from_account"]["account"] == PSEUDONYMS.of(("bank", "KBANK", "kb-111"))
    assert "scb-222" not in orjson.dumps(kbank).decode() and "kb-111" not in orjson.dumps(scb).decode()
    assert kbank["amount"] == "-5" and kbank["txn_id"] == "t-1", "the partner can find and fix its message"


def test_a_transfer_rejected_for_its_bad_target_institution_goes_to_the_source_alone_target_hidden() -> None:
    copies = _copies("bank-transactions", _transaction(to_account={"institution": "", "account": "scb-222"}))
    assert set(copies) == {"KBANK"}
    assert copies["KBANK"]["to_account"] == {"institution": "", "account": PSEUDONYMS.of(("bank", "", "scb-222"))}


def test_fields_outside_the_contract_and_nested_values_never_reach_a_partner() -> None:
    message = _transaction(amount=-5, holder_name="Somchai", from_account={**VICTIM, "holder": "Somchai"},
                           currency={"nested": "Somchai"})  # fmt: skip
    [copy] = _copies("bank-transactions", {**message, "to_account": "scb-222 at SCB"}).values()
    assert "Somchai" not in orjson.dumps(copy).decode()
    assert copy["from_account"] == VICTIM
    assert copy["to_account"] == PSEUDONYMS.of(("?", "?", "scb-222 at SCB")), "an account in the wrong shape is hidden"


def test_names_differing_in_case_are_one_partner_with_one_copy_and_both_accounts_clear() -> None:
    copies = _copies("bank-transactions", _transaction(amount=0, to_account={**MULE, "institution": "kbank"}))
    assert list(copies) == ["KBANK"]
    assert copies["KBANK"]["to_account"]["account"] == "scb-222"


def test_telecom_events_go_to_their_operator_and_acks_to_their_addressee() -> None:
    event = {"event_id": "e1", "operator": "AIS", "kind": "call", "msisdn": "+66811111111", "occurred_at": "x",
             "counterparty_msisdn": "+66822222222", "extra": "dropped"}  # fmt: skip
    assert _copies("telecom-events", event) == {"AIS": {k: v for k, v in event.items() if k != "extra"}}
    ack = {"action_id": "frz-1", "version": 1, "addressee": "SCB", "status": "done", "acked_at": "x"}
    assert _copies("action-acks", ack) == {"SCB": ack}


def test_a_message_on_a_partners_own_topic_is_that_partners_bytes_and_all() -> None:
    raw = b'{"not json'
    assert dead_letter_copies("t.action-acks.kbank", raw, "t.", PSEUDONYMS) == [("kbank", raw)]
    assert dead_letter_copies("t.action-acks.---", raw, "t.", PSEUDONYMS) == []


@pytest.mark.parametrize(
    ("topic", "raw"),
    [
        ("bank-transactions", b'{"txn_id": '),  # not JSON: whose it is cannot be read
        ("bank-transactions", b"[1, 2]"),
        ("bank-transactions", b""),
        ("victim-reports", orjson.dumps({"victim_id": "v", "transfers": [{"from_account": VICTIM}]})),
        ("unknown-topic", orjson.dumps(_transaction())),
        ("bank-transactions", orjson.dumps(_transaction(from_account={"institution": "../"}, to_account=None))),
        ("telecom-events", orjson.dumps({"operator": "A" * 129})),
        ("telecom-events", orjson.dumps({"operator": ["AIS"]})),
    ],
)
def test_without_a_partner_fit_for_a_topic_name_a_dead_letter_stays_with_the_war_room(topic: str, raw: bytes) -> None:
    assert dead_letter_copies(topic, raw, "", PSEUDONYMS) == []


def test_partner_names_must_be_short_strings_that_make_a_topic_name() -> None:
    assert partner_name("True Money/TH") == "True Money/TH"
    assert [partner_name(v) for v in ("", "../", "-", "A" * 129, 7, None)] == [None] * 6


def test_the_shapes_cover_every_field_of_the_input_contracts() -> None:
    models = {spec.name: spec.model for spec in INPUT_TOPICS}
    for topic, shape in INPUT_SHAPES.items():
        model = models[topic]
        assert model is not None and {*shape.scalars, *shape.accounts} == set(model.model_fields), topic


# --- freeze actions: the addressee's copy ---


def _record(topic: str, offset: int, value: dict) -> SimpleNamespace:
    return SimpleNamespace(topic=topic, partition=0, offset=offset, timestamp=1_795_400_000_000,
                           value=orjson.dumps(value))  # fmt: skip


def _wallet_order():
    """KBANK's customer pays an SCB mule, who moves the money on to a wallet at W: W's order has both in its trail."""
    paid = _transaction(amount="1000.00")
    onward = _transaction(txn_id="t-2", from_account=MULE, to_account=WALLET, amount="400.00",
                          executed_at="2026-11-23T10:05:00Z")  # fmt: skip
    report = {"report_id": "R1", "reported_at": "2026-11-24T04:00:00Z", "victim_id": "victim-opaque-9",
              "country": "TH", "scam_type": "romance",
              "transfers": [{**paid, "sent_at": paid["executed_at"]}]}  # fmt: skip
    records = [_record("bank-transactions", 0, paid), _record("bank-transactions", 1, onward),
               _record("victim-reports", 0, report)]  # fmt: skip
    orders = Interception(Settings()).process(records, now_ms=1_795_500_000_000).orders
    return next(order for order in orders if order.addressee == "W")


def test_the_addressees_copy_hides_other_institutions_accounts_and_keeps_its_own() -> None:
    order = _wallet_order()
    _, shared = encode_freeze_action(order, SIGNER, LIMITS)
    _, copy = encode_freeze_action(order, SIGNER, LIMITS, lambda a: addressee_freeze_view(a, PSEUDONYMS))
    clear, hidden = FreezeAction.model_validate_json(shared), FreezeAction.model_validate_json(copy)
    assert [(s.from_account.account, s.to_account.account) for s in clear.trail] == [("kb-111", "scb-222"),
                                                                                    ("scb-222", "w-333")]  # fmt: skip
    assert [(s.from_account.account, s.to_account.account) for s in hidden.trail] == [
        (PSEUDONYMS.of(("bank", "KBANK", "kb-111")), PSEUDONYMS.of(("bank", "SCB", "scb-222"))),
        (PSEUDONYMS.of(("bank", "SCB", "scb-222")), "w-333"),
    ]
    assert [s.from_account.institution for s in hidden.trail] == ["KBANK", "SCB"], "who sent it stays visible"
    for number in ("kb-111", "scb-222", "victim-opaque-9"):
        assert number.encode() not in copy
    assert b"victim-opaque-9" not in shared, "victim_id is opaque: no action carries it"
    # the digest still pins the evidence, but cannot be used to try account numbers against
    assert clear.trail_digest.startswith("sha256:") and hidden.trail_digest == PSEUDONYMS.keyed_digest(
        clear.trail_digest
    )
    assert clear.model_dump(exclude={"trail", "trail_digest", "signature"}) == hidden.model_dump(
        exclude={"trail", "trail_digest", "signature"}
    )


def test_the_addressees_copy_is_signed_as_published_and_verifies_on_its_own() -> None:
    order = _wallet_order()
    _, shared = encode_freeze_action(order, SIGNER, LIMITS)
    _, copy = encode_freeze_action(order, SIGNER, LIMITS, lambda a: addressee_freeze_view(a, PSEUDONYMS))
    assert verify_ed25519(copy, PUBLIC_KEYS) and verify_ed25519(shared, PUBLIC_KEYS)
    assert orjson.loads(copy)["signature"] != orjson.loads(shared)["signature"]
    unhidden = orjson.loads(copy)
    unhidden["trail"] = orjson.loads(shared)["trail"]
    assert not verify_ed25519(orjson.dumps(unhidden), PUBLIC_KEYS), "the copy's signature covers the pseudonyms"
