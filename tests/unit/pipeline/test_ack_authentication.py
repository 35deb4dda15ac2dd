"""Only the addressee can acknowledge its orders (pipeline/ack_authentication.py): forged acks change nothing."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from test_interception_expiry import EXPIRES, FIRST, SETTINGS, T, _ack, _freeze

from pipeline.interception import Interception
from processors.freeze_orders import FreezeOrder
from schemas.signing import Ed25519Signer

KBANK, SCB, STRANGER = (Ed25519Signer(Ed25519PrivateKey.generate()) for _ in range(3))
REGISTRY = {name: {signer.kid: signer.private_key.public_key()} for name, signer in (("KBANK", KBANK), ("SCB", SCB))}
SHARED, KBANK_OWN, SCB_OWN = "action-acks", "action-acks.kbank", "action-acks.scb"
PAST_EVERY_SLA = T + 24 * 3600 * 1000


def _started() -> tuple[Interception, FreezeOrder]:
    """One freeze order, addressed to KBANK (the mule's bank), not yet acknowledged."""
    interception = Interception(SETTINGS, institution_keys=REGISTRY)
    result = interception.process(FIRST, T)
    order = _freeze(result.orders)
    assert order.addressee == "KBANK"
    return interception, order


def _on(topic: str, message: dict[str, Any] | bytes, offset: int = 10) -> SimpleNamespace:
    raw = message if isinstance(message, bytes) else orjson.dumps(message)
    return SimpleNamespace(topic=SETTINGS.topic_prefix + topic, partition=0, offset=offset, timestamp=T, value=raw)


def _escalated(interception: Interception, order: FreezeOrder) -> bool:
    return order.action_id in {a.action_id for a in interception.escalate(PAST_EVERY_SLA).escalated}


@pytest.mark.parametrize(
    ("topic", "message"),
    [
        pytest.param(SHARED, lambda ack: KBANK.signed(ack), id="signed with the addressee's key"),
        pytest.param(KBANK_OWN, lambda ack: ack, id="unsigned on the addressee's own topic"),
        pytest.param(KBANK_OWN, lambda ack: STRANGER.signed(ack), id="own topic: a signature is not needed"),
    ],
)
def test_an_authentic_ack_is_taken_and_stops_escalation(topic: str, message: Callable[[dict], dict]) -> None:
    interception, order = _started()
    result = interception.process([_on(topic, message(_ack(order, "100.00")))], T)

    assert result.rejected == [] and [a.action_id for a in result.acks] == [order.action_id]
    assert not _escalated(interception, order)


def _tampered(ack: dict[str, Any]) -> dict[str, Any]:
    return {**KBANK.signed(ack), "amount_held": "999.00"}


def _float_amount(ack: dict[str, Any]) -> bytes:
    # Floats print differently in every language, so a signed ack carries amounts as decimal strings.
    return orjson.dumps(KBANK.signed({**ack, "amount_held": "100.00"})).replace(b'"100.00"', b"100.0")


@pytest.mark.parametrize(
    ("topic", "forge", "error"),
    [
        pytest.param(SHARED, lambda ack: ack, "not signed by a key registered for KBANK", id="unsigned"),
        pytest.param(
            SHARED, lambda ack: {**STRANGER.signed(ack), "kid": KBANK.kid}, "not signed", id="wrong signature"
        ),
        pytest.param(SHARED, SCB.signed, "not signed by a key registered for KBANK", id="another institution's key"),
        pytest.param(SHARED, _tampered, "not signed", id="changed after signing"),
        pytest.param(SHARED, _float_amount, "decimal strings", id="amount as a float"),
        pytest.param(SCB_OWN, lambda ack: ack, "arrived on action-acks.scb, another institution's", id="SCB's topic"),
        pytest.param(SCB_OWN, KBANK.signed, "another institution's topic", id="SCB's topic, KBANK's signature"),
        pytest.param(
            SHARED,
            lambda ack: {**ack, "addressee": "TRUEMONEY"},
            "TRUEMONEY has no registered key",
            id="an institution without a key, on the shared topic",
        ),
    ],
)
def test_a_forged_ack_is_dead_lettered_as_unauthenticated_and_changes_nothing(
    topic: str, forge: Callable[[dict[str, Any]], dict[str, Any] | bytes], error: str
) -> None:
    interception, order = _started()
    held_before = interception.lifecycle.money_held()
    result = interception.process([_on(topic, forge(_ack(order, "100.00")))], T)

    [rejected] = result.rejected
    assert rejected.rejection.reason == "unauthenticated" and error in rejected.rejection.error
    assert result.acks == [] and interception.lifecycle.money_held() == held_before
    assert _escalated(interception, order), "the order is still chased"


def _appeal(order: FreezeOrder, requester: str = "KBANK") -> dict[str, Any]:
    return {"request_id": f"{requester}-APPEAL-1", "action_id": order.action_id, "requester": requester,
            "reason": "the customer showed the money is a salary", "requested_at": "2026-11-24T06:10:00Z"}  # fmt: skip


@pytest.mark.parametrize(
    ("message", "answered"),
    [
        pytest.param(lambda appeal: KBANK.signed(appeal), True, id="signed with the requester's key"),
        pytest.param(lambda appeal: appeal, False, id="unsigned"),
        pytest.param(lambda appeal: SCB.signed(appeal), False, id="signed with another institution's key"),
        pytest.param(lambda appeal: STRANGER.signed(appeal), False, id="signed with an unregistered key"),
        pytest.param(lambda appeal: {**KBANK.signed(appeal), "reason": "changed"}, False, id="tampered"),
    ],
)
def test_a_release_request_on_the_shared_topic_counts_only_if_the_requester_signed_it(
    message: Callable[[dict], dict], answered: bool
) -> None:
    interception, order = _started()

    result = interception.process([_on("release-requests", message(_appeal(order)))], T)

    if answered:  # authenticated, then decided: the report behind the order has only just arrived
        assert result.rejected == []
        assert [(a.request.requester, a.reason) for a in result.answers] == [("kbank", "reports_still_arriving")]
    else:
        assert [r.rejection.reason for r in result.rejected] == ["unauthenticated"] and result.answers == []
    assert interception.actions.last(order.action_id) == order  # nothing released either way


def test_a_signed_request_for_another_institutions_action_is_answered_as_if_it_did_not_exist() -> None:
    interception, order = _started()

    result = interception.process([_on("release-requests", SCB.signed(_appeal(order, requester="SCB")))], T)

    assert result.rejected == []
    [answer] = result.answers
    assert (answer.granted, answer.reason) == (False, "unknown_action") and "KBANK" not in answer.explanation


def test_only_the_addressee_learns_that_a_forgotten_action_expired() -> None:
    interception, order = _started()
    interception.expire(EXPIRES)
    late = _ack(order, "100.00")

    own = interception.process([_on(KBANK_OWN, late)], EXPIRES)
    probe = interception.process([_on(SCB_OWN, {**late, "addressee": "SCB"})], EXPIRES)

    assert [r.rejection.reason for r in own.rejected] == ["expired_action"]
    assert [r.rejection.reason for r in probe.rejected] == ["unknown_action"]  # as for an id never issued
