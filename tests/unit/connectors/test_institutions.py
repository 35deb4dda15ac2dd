"""The simulated institutions answer on the ActionAck contract, late, sometimes partly, and some never."""

from __future__ import annotations

import random
from decimal import Decimal

import orjson
import pytest

from connectors.institutions import InstitutionDesk
from connectors.synthetic_feed import FeedEvent, FeedSettingsError
from pipeline.ack_authentication import AckAuthentication
from schemas.events import ActionAck
from schemas.fields import format_minor_units, to_minor_units
from schemas.signing import public_keys_from_jwks

T0 = 1_763_892_000_000
BANKS = ("KBNK", "SCBK", "BBLK", "KTBK", "BAYK", "TMNW", "BTKX")
OPERATORS = ("AIS", "TRUE", "DTAC")
PLATFORMS = ("facebook.com", "line.me", "t.me")


def freeze(
    action_id: str, version: int, addressee: str | None, hold: str, status: str = "active", currency: str = "THB"
) -> dict[str, object]:
    action: dict[str, object] = {
        "action_id": action_id,
        "version": version,
        "status": status,
        "target": {"institution": addressee or "KBNK", "account": "0123456789", "kind": "bank"},
        "hold_amount": hold,
        "currency": currency,
        "priority": 50,
    }
    if addressee is not None:
        action["addressee"] = addressee
    return action


def suspension(action_id: str, version: int, addressee: str, target_type: str = "msisdn") -> dict[str, object]:
    return {
        "action_id": action_id,
        "version": version,
        "status": "active",
        "target_type": target_type,
        "target": "+66812345678",
        "addressee": addressee,
        "priority": 60,
    }


def drain(desk: InstitutionDesk, start_ms: int, end_ms: int, step_ms: int = 250) -> list[FeedEvent]:
    acks: list[FeedEvent] = []
    for now in range(start_ms, end_ms + 1, step_ms):
        acks += desk.acks_until(now)
    return acks


def validated(event: FeedEvent) -> ActionAck:
    assert event.topic == "action-acks"
    assert isinstance(event.value, dict)
    ack = ActionAck.model_validate_json(orjson.dumps(event.value))
    assert ack.acked_at == event.at_ms
    assert event.key == ack.action_id.encode()
    return ack


def busy_day(desk: InstitutionDesk, count: int = 600) -> dict[str, tuple[int, dict[str, object]]]:
    """Take ``count`` first versions, a mix of freezes and suspensions, one every 100 ms; returns them by id."""
    draw = random.Random(7)
    taken: dict[str, tuple[int, dict[str, object]]] = {}
    for n in range(count):
        now = T0 + 100 * n
        if n % 3:
            action = freeze(f"frz-{n}", 1, draw.choice(BANKS), format_minor_units(draw.randint(100, 10**8), "THB"))
        else:
            action = suspension(f"sus-{n}", 1, draw.choice(OPERATORS + PLATFORMS), draw.choice(("msisdn", "url")))
        desk.take(action, now)
        taken[str(action["action_id"])] = (now, action)
    return taken


def test_every_ack_is_signed_by_its_institution_and_verifies_only_under_that_institution() -> None:
    desk = InstitutionDesk(seed=1, unresponsive_share=0)
    busy_day(desk, count=60)
    events = drain(desk, T0, T0 + 70_000)
    registry = desk.registry(BANKS + OPERATORS + PLATFORMS)
    authentication = AckAuthentication("", {name: public_keys_from_jwks(jwks, name) for name, jwks in registry.items()})

    assert events and InstitutionDesk(seed=1).registry(["SCB"]) == desk.registry(["SCB"]), "keys follow the seed"
    for event in events:
        raw, addressee = orjson.dumps(event.value), str(event.value["addressee"])  # type: ignore[index]
        assert authentication.refusal("action-acks", raw, addressee) is None
        other = next(name for name in BANKS if name != addressee)
        assert authentication.refusal("action-acks", raw.replace(addressee.encode(), other.encode()), other)


def test_every_ack_follows_the_contract_and_holds_at_most_the_order() -> None:
    desk = InstitutionDesk(seed=1, unresponsive_share=0)
    taken = busy_day(desk)
    acks = [validated(event) for event in drain(desk, T0, T0 + 70_000)]

    assert len(acks) == len(taken)  # everyone answers when nobody is unresponsive
    assert {ack.status for ack in acks} == {"executed", "partial", "not_found"}
    for ack in acks:
        _, action = taken[ack.action_id]
        assert (ack.version, ack.addressee) == (action["version"], action["addressee"])
        if "hold_amount" not in action:
            assert ack.amount_held is None and ack.status in {"executed", "not_found"}
        elif ack.status == "not_found":
            assert ack.amount_held is None
        else:
            assert ack.amount_held is not None
            hold = Decimal(str(action["hold_amount"]))
            assert 0 < ack.amount_held <= hold
            assert (ack.amount_held == hold) is (ack.status == "executed")
    statuses = [ack.status for ack in acks]
    assert statuses.count("executed") > 0.7 * len(acks)
    assert statuses.count("not_found") < statuses.count("partial") < 0.25 * len(acks)


@pytest.mark.parametrize("currency", ["THB", "JPY", "BHD", "USDT"])
def test_partial_holds_stay_within_the_currency_and_below_the_order(currency: str) -> None:
    desk = InstitutionDesk(seed=2, unresponsive_share=0)
    draw = random.Random(currency)
    holds = {}
    for n in range(400):
        hold = format_minor_units(draw.choice((2, 3, draw.randint(2, 10**9))), currency)
        holds[f"a{n}"] = Decimal(hold)
        desk.take(freeze(f"a{n}", 1, "KBNK", hold, currency=currency), T0)

    partial = 0
    for event in desk.acks_until(T0 + 6_000):
        ack = validated(event)
        if ack.amount_held is not None:
            to_minor_units(ack.amount_held, currency)  # whole minor units only
            assert ack.amount_held <= holds[ack.action_id]
            partial += ack.status == "partial"
    assert partial > 10


def test_acks_come_after_their_delay_and_only_once() -> None:
    desk = InstitutionDesk(seed=3, ack_delay_s=(2.0, 4.5), unresponsive_share=0)
    taken = busy_day(desk, count=200)

    seen: list[FeedEvent] = []
    polls = random.Random(0)
    previous = T0
    while previous < T0 + 30_000:
        now = previous + polls.randint(0, 400)
        batch = desk.acks_until(now)
        assert all(previous < event.at_ms <= now for event in batch)
        assert [event.at_ms for event in batch] == sorted(event.at_ms for event in batch)
        assert desk.acks_until(now) == []
        seen += batch
        previous = now

    assert len(seen) == len(taken)
    for event in seen:
        took_at, _ = taken[validated(event).action_id]
        assert took_at + 2_000 <= event.at_ms <= took_at + 4_500
    assert len({event.value["action_id"] for event in seen if isinstance(event.value, dict)}) == len(seen)


def test_same_seed_gives_the_same_acks_however_often_the_caller_polls() -> None:
    def acks(seed: int, step_ms: int) -> list[FeedEvent]:
        desk = InstitutionDesk(seed=seed)
        busy_day(desk, count=300)
        return drain(desk, T0, T0 + 40_000, step_ms)

    steady = acks(4, 100)
    assert steady == acks(4, 1_700)
    assert steady != acks(5, 100)


def test_unresponsive_addressees_never_answer() -> None:
    desk = InstitutionDesk(seed=6, unresponsive_share=0.3)
    addressees = [f"BANK{n:02d}" for n in range(60)]
    silent = {a for a in addressees if desk.is_unresponsive(a)}
    for n in range(1_200):
        desk.take(freeze(f"f{n}", 1, addressees[n % 60], "1000.00"), T0 + n)
    answered = {validated(event).addressee for event in drain(desk, T0, T0 + 20_000)}

    assert 5 < len(silent) < 35
    assert answered == set(addressees) - silent
    assert {a for a in addressees if InstitutionDesk(seed=6, unresponsive_share=0.3).is_unresponsive(a)} == silent
    assert not any(InstitutionDesk(seed=6, unresponsive_share=0).is_unresponsive(a) for a in addressees)
    assert all(InstitutionDesk(seed=6, unresponsive_share=1).is_unresponsive(a) for a in addressees)


def test_a_newer_version_before_the_ack_is_answered_alone() -> None:
    desk = InstitutionDesk(seed=7, ack_delay_s=(3.0, 3.0), unresponsive_share=0)
    desk.take(freeze("f", 1, "SCBK", "500.00"), T0)
    desk.take(freeze("f", 2, "SCBK", "800.00"), T0 + 1_000)
    desk.take(freeze("f", 1, "SCBK", "500.00"), T0 + 1_500)  # late redelivery of the old version
    desk.take(freeze("f", 2, "SCBK", "800.00"), T0 + 2_000)  # redelivery of the newest

    (event,) = drain(desk, T0, T0 + 10_000)
    ack = validated(event)
    assert (ack.version, event.at_ms) == (2, T0 + 4_000)
    assert ack.amount_held is None or ack.amount_held <= Decimal("800.00")

    # Once the old version was answered, a newer one gets its own answer.
    desk.take(freeze("f", 3, "SCBK", "900.00"), T0 + 10_000)
    assert [validated(e).version for e in drain(desk, T0 + 10_000, T0 + 20_000)] == [3]


def test_released_orders_and_empty_holds_get_no_ack_and_cancel_the_pending_one() -> None:
    desk = InstitutionDesk(seed=8, unresponsive_share=0)
    desk.take(freeze("released", 1, "KBNK", "100.00"), T0)
    desk.take(freeze("released", 2, "KBNK", "100.00", status="released"), T0 + 100)
    desk.take(freeze("emptied", 1, "KBNK", "100.00"), T0)
    desk.take(freeze("emptied", 2, "KBNK", "0.00"), T0 + 100)
    desk.take(freeze("never-held", 1, "KBNK", "0"), T0)
    desk.take(freeze("kept", 1, "KBNK", "100.00"), T0)

    assert [validated(event).action_id for event in drain(desk, T0, T0 + 10_000)] == ["kept"]


def test_an_older_freeze_without_addressee_is_answered_by_its_target_institution() -> None:
    desk = InstitutionDesk(seed=9, unresponsive_share=0)
    desk.take(freeze("old", 1, None, "250.00"), T0)

    (event,) = desk.acks_until(T0 + 6_000)
    assert validated(event).addressee == "KBNK"


@pytest.mark.parametrize(
    "wrong",
    [
        {"ack_delay_s": (-1.0, 2.0)},
        {"ack_delay_s": (3.0, 2.0)},
        {"ack_delay_s": (1.0, float("inf"))},
        {"unresponsive_share": -0.1},
        {"unresponsive_share": 1.5},
    ],
)
def test_the_desk_refuses_impossible_settings(wrong: dict[str, object]) -> None:
    with pytest.raises(FeedSettingsError):
        InstitutionDesk(seed=0, **wrong)  # type: ignore[arg-type]
