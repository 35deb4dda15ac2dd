"""Wire encoding of actions and dead letters, and the round trip recovery depends on."""

from __future__ import annotations

import base64
import random
from dataclasses import replace
from types import SimpleNamespace

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pipeline.encode import (
    encode_dead_letter,
    encode_freeze_action,
    encode_suspension_action,
    encode_victim_warning,
    listed_trail,
    restore_freeze_order,
    restore_suspension,
    restore_warning,
)
from pipeline.errors import MessageTooLargeError
from pipeline.interception import Interception
from pipeline.settings import Settings
from processors.freeze_orders import FreezeOrder, freeze_action_id
from processors.money_trail import TrailStep, evidence_digest
from processors.records import AccountKey
from processors.telecom import SuspensionOrder, WarningOrder, suspension_digest, warning_digest
from schemas.actions import DeadLetter, FreezeAction, SuspensionAction, VictimWarning
from schemas.decode import Rejection
from schemas.signing import Ed25519Signer, HmacSigner, SigningKeys, verify_ed25519, verify_hmac

ACCOUNT = {"institution": "KBANK", "account": "1"}
LIMITS = Settings().action_limits
MIB = 1024 * 1024


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


SIGNER = Ed25519Signer(Ed25519PrivateKey.generate())
PUBLIC_KEYS = {SIGNER.kid: SIGNER.private_key.public_key()}


def test_a_freeze_action_reads_back_to_the_same_fingerprint_recovery_compares() -> None:
    orders = _orders()
    assert len(orders) == 2
    for order in orders:
        key, value = encode_freeze_action(order, SIGNER, LIMITS)
        action = FreezeAction.model_validate_json(value)
        assert key == order.action_id.encode()  # compaction keeps the latest version of each action
        restored = restore_freeze_order(value)
        assert (restored.action_id, restored.version, restored.fingerprint) == (
            order.action_id,
            order.version,
            order.fingerprint,
        )
        assert restored.trail == order.trail
        assert restored.trail_steps_total == -1  # nothing was left out
        assert action.trail and action.trail[0].hop == 0
        assert (action.trail_steps_total, action.trail_digest) == (len(order.trail), order.evidence_digest)
        assert (action.report_ids_total, action.txn_ids_total) == (len(order.report_ids), len(order.txn_ids))


def test_an_account_holding_money_in_two_currencies_has_two_keys_so_compaction_keeps_both_actions() -> None:
    thb = _orders()[0]
    usd = replace(thb, currency="USD", action_id=freeze_action_id((thb.target, "USD")))

    (thb_key, _), (usd_key, _) = (encode_freeze_action(order, SIGNER, LIMITS) for order in (thb, usd))

    assert thb_key != usd_key


def test_every_emitted_action_names_the_war_rooms_key_and_verifies_with_it_alone() -> None:
    another = Ed25519Signer(Ed25519PrivateKey.generate())
    for order in _orders():
        _, value = encode_freeze_action(order, SIGNER, LIMITS)
        assert orjson.loads(value)["kid"] == SIGNER.kid
        assert verify_ed25519(value, PUBLIC_KEYS)
        assert not verify_ed25519(value, {SIGNER.kid: another.private_key.public_key()})
        tampered = orjson.loads(value)
        tampered["hold_amount"] = "999999.00"
        assert not verify_ed25519(orjson.dumps(tampered), PUBLIC_KEYS)
        relabelled = {**orjson.loads(value), "kid": another.kid}  # the kid is signed too
        assert not verify_ed25519(orjson.dumps(relabelled), {another.kid: SIGNER.private_key.public_key()})


def test_with_hmac_chosen_each_action_verifies_with_its_addressees_shared_key_only() -> None:
    keys = SigningKeys(keys={"SCB": b"scb-key"}, default=b"default-key")
    for order in _orders():
        _, value = encode_freeze_action(order, HmacSigner(keys), LIMITS)
        own_key = keys.for_addressee(order.addressee)
        assert orjson.loads(value)["kid"] == (order.addressee if order.addressee == "SCB" else "default")
        assert verify_hmac(value, own_key)
        assert not verify_hmac(value, b"someone-else")


def test_amounts_go_out_as_decimal_strings_in_the_currency_minor_unit() -> None:
    by_account = {
        o.target[2]: FreezeAction.model_validate_json(encode_freeze_action(o, SIGNER, LIMITS)[1]) for o in _orders()
    }
    assert by_account["m1"].hold_amount == "600.50"
    assert by_account["m1"].tainted_received == "1000.50"
    assert by_account["w"].hold_amount == "400.00"


def test_dead_letters_keep_the_original_bytes_as_text_or_base64() -> None:
    rejection = Rejection("malformed_json", "the message is not valid JSON")
    _, text = encode_dead_letter("bank-transactions", 2, 17, b'{"a":', rejection, 0, LIMITS)
    _, binary = encode_dead_letter("bank-transactions", 2, 18, b"\xff\xfe", rejection, 0, LIMITS)
    as_text, as_base64 = DeadLetter.model_validate_json(text), DeadLetter.model_validate_json(binary)
    assert (as_text.payload, as_text.payload_encoding, as_text.offset) == ('{"a":', "utf-8", 17)
    assert base64.b64decode(as_base64.payload) == b"\xff\xfe" and as_base64.payload_encoding == "base64"


# A fan-in: 20,000 victims pay one collecting account, which moves it all on in one transfer.
VICTIMS = 20_000
START_MS = 1_795_400_000_000
COLLECTOR: AccountKey = ("bank", "KBANK", "123-4-56789-0")
ONWARD: AccountKey = ("crypto", "BINANCE", "0x9f3b5c7d1e2a4b6c8d0e1f2a3b4c5d6e7f8a9b0c")
BANKS = ("SCB", "KTB", "BBL", "BAY", "TTB", "GSB", "KBANK", "UOBT")


def _fan_in_order() -> FreezeOrder:
    """The order at the account the money moved on to: 20,000 victim transfers and the onward one."""
    rng = random.Random(20_000)
    report_ids = tuple(sorted(f"TH-TPO-2026-{n:09d}" for n in range(VICTIMS)))
    steps = [
        TrailStep(
            txn_id=f"{BANKS[n % len(BANKS)]}-20261123-{n:012d}",
            report_ids=(report_ids[n],),
            hop=0,
            source=("bank", BANKS[n % len(BANKS)], f"{rng.randrange(10**9):03d}-{n % 10}-{rng.randrange(10**6):06d}"),
            target=COLLECTOR,
            tainted_amount=rng.randrange(1_000, 5_000_000),
            currency="THB",
            at_ms=START_MS + rng.randrange(48 * 3_600_000),
        )
        for n in range(VICTIMS)
    ]
    total = sum(step.tainted_amount for step in steps)
    onward = TrailStep(
        "KBANK-20261125-999999999999", report_ids, 1, COLLECTOR, ONWARD, total, "THB", START_MS + 50 * 3_600_000
    )
    trail = tuple(sorted([*steps, onward], key=lambda step: (step.at_ms, step.txn_id)))
    return FreezeOrder(
        action_id="frz-0123456789abcdef01234567",
        version=3,
        status="active",
        target=ONWARD,
        currency="THB",
        hold=total,
        priority=97,
        hop=1,
        received=total,
        moved_on=0,
        report_ids=report_ids,
        txn_ids=tuple(step.txn_id for step in trail),
        reasons=(f"received {total // 100} THB of reported money 1 hop(s) from the victim", f"{VICTIMS} reports"),
        trail=trail,
        issued_at_ms=START_MS + 60 * 3_600_000,
        report_received_at_ms=START_MS + 49 * 3_600_000,
        hold_expires_at_ms=START_MS + 60 * 3_600_000 + 7 * 86_400_000,
        evidence_digest=evidence_digest(report_ids, trail),
    )


@pytest.fixture(scope="module")
def fan_in() -> FreezeOrder:
    return _fan_in_order()


def test_the_worst_fan_in_fits_in_one_signed_action_listing_the_largest_and_the_latest_steps(
    fan_in: FreezeOrder,
) -> None:
    _, value = encode_freeze_action(fan_in, SIGNER, LIMITS)
    action = FreezeAction.model_validate_json(value)

    assert len(value) < LIMITS.max_action_bytes < MIB
    assert verify_ed25519(value, PUBLIC_KEYS)
    totals = (action.trail_steps_total, action.report_ids_total, action.txn_ids_total)
    assert totals == (VICTIMS + 1, VICTIMS, VICTIMS + 1)  # the victims' transfers and the onward one
    assert action.report_ids == list(fan_in.report_ids[: LIMITS.max_listed_ids])
    assert action.txn_ids == list(fan_in.txn_ids[: LIMITS.max_listed_ids])
    assert action.trail_digest == fan_in.evidence_digest

    # The oracle: half the slots for the largest amounts, the rest for the latest of the others.
    half = LIMITS.max_trail_steps // 2
    largest = set(sorted(fan_in.trail, key=lambda step: -step.tainted_amount)[:half])
    latest = [step for step in reversed(fan_in.trail) if step not in largest][: LIMITS.max_trail_steps - half]
    listed = [step.txn_id for step in action.trail]
    assert len(listed) == len(set(listed)) == LIMITS.max_trail_steps
    assert set(listed) == {step.txn_id for step in (*largest, *latest)}
    assert [(step.at, step.txn_id) for step in action.trail] == sorted((step.at, step.txn_id) for step in action.trail)

    onward = action.trail[-1]  # the latest step, carrying every report: only the lowest ids are listed
    assert (onward.hop, onward.report_id) == (1, fan_in.report_ids[0])
    assert onward.report_ids == list(fan_in.report_ids[:10])


def test_a_bounded_action_restores_to_the_fingerprint_recovery_compares(fan_in: FreezeOrder) -> None:
    _, value = encode_freeze_action(fan_in, SIGNER, LIMITS)
    restored = restore_freeze_order(value)

    assert restored.fingerprint == fan_in.fingerprint
    assert (restored.action_id, restored.version) == (fan_in.action_id, fan_in.version)
    assert restored.trail_steps_total == VICTIMS + 1
    assert len(restored.trail) == LIMITS.max_trail_steps
    assert set(restored.trail) <= {replace(step, report_ids=step.report_ids[:10]) for step in fan_in.trail}


def test_a_message_over_max_action_bytes_lists_less_until_it_fits(fan_in: FreezeOrder) -> None:
    tight = replace(LIMITS, max_action_bytes=20_000)
    _, value = encode_freeze_action(fan_in, SIGNER, tight)
    action = FreezeAction.model_validate_json(value)

    assert len(value) <= tight.max_action_bytes
    assert verify_ed25519(value, PUBLIC_KEYS)
    assert 0 < len(action.trail) < LIMITS.max_trail_steps
    assert len(action.report_ids) < LIMITS.max_listed_ids
    assert (action.trail_steps_total, action.report_ids_total) == (VICTIMS + 1, VICTIMS)
    assert restore_freeze_order(value).fingerprint == fan_in.fingerprint


def test_a_message_that_cannot_fit_even_with_empty_lists_is_a_programmer_error(fan_in: FreezeOrder) -> None:
    with pytest.raises(MessageTooLargeError, match="max_action_bytes is 500"):
        encode_freeze_action(fan_in, SIGNER, replace(LIMITS, max_action_bytes=500))


def _step(txn_id: str, amount: int, at_ms: int) -> TrailStep:
    return TrailStep(txn_id, ("R1",), 0, COLLECTOR, ONWARD, amount, "THB", at_ms)


def test_the_listed_trail_never_lists_a_step_twice() -> None:
    # The latest step is also the largest: the latest slots go on to the next latest ones.
    trail = (_step("a", 50, 1), _step("b", 900, 2), _step("c", 10, 3), _step("d", 20, 4), _step("e", 999, 5))

    assert [step.txn_id for step in listed_trail(trail, 4)] == ["b", "c", "d", "e"]
    assert [step.txn_id for step in listed_trail(trail, 1)] == ["e"]
    assert listed_trail(trail, 5) == trail


def _suspension(report_ids: tuple[str, ...], evidence: tuple[str, ...]) -> SuspensionOrder:
    return SuspensionOrder(
        action_id="sus-1", version=1, target_type="msisdn", target="+66812345678", addressee="AIS", priority=90,
        reasons=("reported scammer number",), report_ids=report_ids, evidence=evidence,
        issued_at_ms=START_MS, report_received_at_ms=START_MS, evidence_digest=suspension_digest(report_ids, evidence),
    )  # fmt: skip


def _warning(report_ids: tuple[str, ...]) -> WarningOrder:
    return WarningOrder(
        warning_id="wrn-1", version=1, msisdn="+66898765432", operator="AIS", scammer_msisdn="+66812345678",
        last_contact_at_ms=START_MS, report_ids=report_ids, issued_at_ms=START_MS,
        evidence_digest=warning_digest(report_ids),
    )  # fmt: skip


REPORT_IDS = tuple(f"TH-TPO-2026-{n:09d}" for n in range(3_000))
EVIDENCE = tuple(f"AIS-cdr-20261123-{n:012d}" for n in range(50_000))


def test_suspensions_and_warnings_list_at_most_max_listed_ids_with_totals_and_digest() -> None:
    suspension, warning = _suspension(REPORT_IDS, EVIDENCE), _warning(REPORT_IDS)
    _, raw_suspension = encode_suspension_action(suspension, SIGNER, LIMITS)
    _, raw_warning = encode_victim_warning(warning, SIGNER, LIMITS)
    listed = SuspensionAction.model_validate_json(raw_suspension)
    warned = VictimWarning.model_validate_json(raw_warning)

    assert max(len(raw_suspension), len(raw_warning)) <= LIMITS.max_action_bytes
    assert listed.report_ids == list(REPORT_IDS[: LIMITS.max_listed_ids])
    assert listed.evidence == list(EVIDENCE[: LIMITS.max_listed_ids])
    assert (listed.report_ids_total, listed.evidence_total) == (len(REPORT_IDS), len(EVIDENCE))
    assert listed.evidence_digest == suspension.evidence_digest
    assert warned.report_ids == list(REPORT_IDS[: LIMITS.max_listed_ids])
    assert (warned.report_ids_total, warned.evidence_digest) == (len(REPORT_IDS), warning.evidence_digest)


def test_suspensions_and_warnings_with_cut_lists_restore_to_the_fingerprint_recovery_compares() -> None:
    suspension, warning = _suspension(REPORT_IDS, EVIDENCE), _warning(REPORT_IDS)
    assert min(len(REPORT_IDS), len(EVIDENCE)) > LIMITS.max_listed_ids  # the wire cuts both lists

    restored = restore_suspension(encode_suspension_action(suspension, SIGNER, LIMITS)[1])
    assert len(restored.report_ids) == len(restored.evidence) == LIMITS.max_listed_ids
    assert restored.fingerprint == suspension.fingerprint
    assert restored.fingerprint != _suspension(REPORT_IDS, EVIDENCE[:-1]).fingerprint  # a change past the cut
    rewarned = restore_warning(encode_victim_warning(warning, SIGNER, LIMITS)[1])
    assert len(rewarned.report_ids) == LIMITS.max_listed_ids
    assert rewarned.fingerprint == warning.fingerprint
    assert rewarned.fingerprint != _warning(REPORT_IDS[:-1]).fingerprint

    tight = replace(LIMITS, max_action_bytes=20_000)  # the limits are halved until it fits: even less is listed
    shorter = restore_suspension(encode_suspension_action(suspension, SIGNER, tight)[1])
    assert len(shorter.report_ids) < LIMITS.max_listed_ids and shorter.fingerprint == suspension.fingerprint
    assert restore_warning(encode_victim_warning(warning, SIGNER, tight)[1]).fingerprint == warning.fingerprint


@pytest.mark.parametrize("original", [b'{"note": "' + ("ก" * 400_000).encode() + b'"}', b"\xff" * 700_000])
def test_a_dead_letter_for_a_huge_message_keeps_its_beginning_and_says_so(original: bytes) -> None:
    rejection = Rejection("oversized", f"the message is {len(original)} bytes; the limit is 65536")
    _, value = encode_dead_letter("victim-reports", 0, 9, original, rejection, 0, LIMITS)
    letter = DeadLetter.model_validate_json(value)
    carried = letter.payload.encode() if letter.payload_encoding == "utf-8" else base64.b64decode(letter.payload)

    assert len(value) <= LIMITS.max_action_bytes
    assert 0 < len(carried) < len(original) and original.startswith(carried)
    assert f"the first {len(carried)} of the message's {len(original)} bytes" in letter.error
