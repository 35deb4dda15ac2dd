"""Telecom correlation, routing, signatures, acks and escalation, as partners see them on a real broker."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from kafka_client import (
    HOUR,
    account,
    holds_by_account,
    iso,
    latest_versions,
    now,
    produce,
    read_all,
    report,
    signed_by_war_room,
    transaction,
    wait_consumed,
)

from pipeline.broker import create_topics
from pipeline.metrics import Metrics
from pipeline.settings import Settings
from pipeline.topics import ACTION_ACKS, addressee_spec
from pipeline.worker import InterceptionWorker
from schemas.signing import Ed25519Signer

pytestmark = pytest.mark.integration

SCAMMER, BURNER, TARGETED, LONG_AGO = "+66811111111", "+66822222222", "+66833333333", "+66844444444"


def verify(action: dict, settings: Settings) -> bool:
    assert settings.signing_key_dir is not None
    return signed_by_war_room(action, settings.signing_key_dir)


def telecom(event_id: str, kind: str, msisdn: str, at, **extra) -> dict:
    return {"event_id": event_id, "operator": extra.pop("operator", "AIS"), "kind": kind, "msisdn": msisdn,
            "occurred_at": iso(at), **extra}  # fmt: skip


SCB_DESK, AIS_DESK = Ed25519Signer(Ed25519PrivateKey.generate()), Ed25519Signer(Ed25519PrivateKey.generate())


@pytest.fixture
async def settings_with_keys(kafka_bootstrap: str, settings: Settings, tmp_path: Path) -> Settings:
    """SCB and AIS registered their ack keys and have their own ack topics (which broker ACLs would restrict)."""
    registry = {name: desk.jwks for name, desk in (("SCB", SCB_DESK), ("AIS", AIS_DESK))}
    (tmp_path / "institution-keys.json").write_text(json.dumps(registry))
    own_topics = [addressee_spec(ACTION_ACKS, name) for name in registry]
    await create_topics(kafka_bootstrap, own_topics, settings.topic_prefix)  # before the worker subscribes
    return settings.with_overrides(
        sla_critical="PT1S",
        sla_high="PT1S",
        escalation_check_interval_s=0.2,
        institution_keys_file=tmp_path / "institution-keys.json",
    )


@pytest.fixture
async def worker(settings_with_keys: Settings) -> AsyncIterator[InterceptionWorker]:
    running = InterceptionWorker(settings_with_keys, settings_with_keys.bootstrap_servers or "", Metrics("g"))
    await running.start()
    await asyncio.wait_for(running.ready.wait(), timeout=30)
    yield running
    await running.stop()


def _scenario(settings: Settings) -> list[tuple[str, dict | bytes]]:
    p = settings.topic_prefix
    reported_at = now()
    paid_at = reported_at - 2 * HOUR
    victim, mule = account("KBANK", "victim-9"), account("SCB", "mule-9")
    payment = transaction("pay-9", victim, mule, "40000.00", paid_at)
    the_report = report("R-9", reported_at, [payment])
    the_report["scammer_phones"] = [SCAMMER]
    the_report["scam_urls"] = ["https://www.facebook.com/fake-invest-th"]
    proxy = transaction("proxy-1", account("BBL", "someone"), account("PROMPTPAY", "0811111111"), 50, paid_at)
    return [
        (p + "telecom-events", telecom("e1", "sim_registration", SCAMMER, paid_at - 10 * HOUR, registered_id="ID-1")),
        (
            p + "telecom-events",
            telecom("e2", "sim_registration", BURNER, paid_at - 9 * HOUR, registered_id="ID-1", operator="TRUE"),
        ),
        (p + "telecom-events", telecom("e3", "call", SCAMMER, paid_at - HOUR, counterparty_msisdn=TARGETED)),
        (
            p + "telecom-events",
            telecom("e4", "call", SCAMMER, reported_at - 40 * 24 * HOUR, counterparty_msisdn=LONG_AGO),
        ),
        (p + "telecom-events", b'{"event_id": "bad", "kind": "call"}'),
        (p + "bank-transactions", payment),
        (p + "bank-transactions", proxy),
        (p + "victim-reports", the_report),
    ]


async def test_reports_and_telecom_events_become_signed_routed_suspensions_takedowns_and_warnings(
    settings_with_keys: Settings, worker: InterceptionWorker
) -> None:
    settings, bootstrap = settings_with_keys, settings_with_keys.bootstrap_servers or ""
    p = settings.topic_prefix
    events = _scenario(settings)
    await produce(bootstrap, events)
    await wait_consumed(worker.metrics.registry, len(events))

    suspensions = latest_versions(await read_all(bootstrap, p + "suspension-actions"))
    by_target = {(s["target_type"], s["target"]): s for s in suspensions.values()}
    direct, linked = by_target[("msisdn", SCAMMER)], by_target[("msisdn", BURNER)]
    assert direct["addressee"] == "AIS" and linked["addressee"] == "TRUE"
    assert direct["priority"] > linked["priority"]
    assert any("identity document" in reason for reason in linked["reasons"])
    assert by_target[("url", "https://www.facebook.com/fake-invest-th")]["addressee"] == "meta"
    assert verify(direct, settings) and not verify({**direct, "priority": 1}, settings)

    routed = await read_all(bootstrap, p + "suspension-actions.ais")
    assert {a["addressee"] for a in routed} == {"AIS"} and SCAMMER in {a["target"] for a in routed}

    warnings = {w["msisdn"]: w for w in await read_all(bootstrap, p + "victim-warnings")}
    assert TARGETED in warnings and warnings[TARGETED]["scammer_msisdn"] == SCAMMER
    assert LONG_AGO not in warnings, "a call outside the telecom window warns nobody"
    assert not {SCAMMER, BURNER} & warnings.keys(), "suspects are not warned"
    assert verify(warnings[TARGETED], settings)
    assert not verify({**warnings[TARGETED], "msisdn": LONG_AGO}, settings)

    freezes = latest_versions(await read_all(bootstrap, p + "freeze-actions"))
    by_account = {a["target"]["account"]: a for a in freezes.values()}
    assert by_account["mule-9"]["hold_amount"] == "40000.00" and verify(by_account["mule-9"], settings)
    assert by_account["0811111111"]["hold_amount"] == "0.00", "a payment proxy is flagged, not held"
    assert by_account["0811111111"]["priority"] < by_account["mule-9"]["priority"]
    assert {a["addressee"] for a in await read_all(bootstrap, p + "freeze-actions.scb")} == {"SCB"}

    letters = await read_all(bootstrap, p + "dead-letters")
    assert [letter["source_topic"] for letter in letters] == [p + "telecom-events"]


async def test_acks_stop_escalation_and_count_money_held(settings_with_keys: Settings, worker: InterceptionWorker):
    settings, bootstrap = settings_with_keys, settings_with_keys.bootstrap_servers or ""
    p = settings.topic_prefix
    events = _scenario(settings)
    await produce(bootstrap, events)
    await wait_consumed(worker.metrics.registry, len(events))
    freeze = next(
        a for a in latest_versions(await read_all(bootstrap, p + "freeze-actions")).values()
        if a["target"]["account"] == "mule-9"
    )  # fmt: skip

    # Unacknowledged past its 1 s SLA: re-issued with raised priority and an escalated reason. On a slow machine the
    # first escalation may already be out when the latest version is read: then the next is one step further.
    escalated = await _wait_for_version(bootstrap, p + "freeze-actions", freeze["action_id"], freeze["version"] + 1)
    assert escalated["escalation"] == freeze["escalation"] + 1 and escalated["priority"] > freeze["priority"]
    assert any(reason.startswith("escalated") for reason in escalated["reasons"])

    ack = {"action_id": freeze["action_id"], "addressee": "SCB", "status": "executed",
           "amount_held": "40000.00", "acked_at": iso(now()), "note": "held"}  # fmt: skip
    unknown = SCB_DESK.signed({**ack, "action_id": "frz-does-not-exist", "version": 1})
    await produce(bootstrap, [(p + "action-acks", unknown), (p + "action-acks", b"{not json")])
    consumed = len(events) + 2
    await wait_consumed(worker.metrics.registry, consumed)
    sent, settled = await _ack_until_settled(
        worker, bootstrap, p, p + "action-acks", lambda version: SCB_DESK.signed({**ack, "version": version}), consumed
    )
    # Three SLA periods and many escalation checks later, an executed order has not been re-issued.
    await asyncio.sleep(3.5)
    assert latest_versions(await read_all(bootstrap, p + "freeze-actions"))[freeze["action_id"]]["version"] == settled

    registry = worker.metrics.registry
    assert registry.get_sample_value("interceptor_money_held", {"institution": "SCB", "currency": "THB"}) == 40000.0
    assert registry.get_sample_value("interceptor_acks_total", {"status": "executed"}) == sent
    assert registry.get_sample_value("interceptor_report_to_first_executed_ack_seconds_count") == 1.0
    letters = [
        letter for letter in await read_all(bootstrap, p + "dead-letters") if "action-acks" in letter["source_topic"]
    ]
    assert sorted(letter["reason"] for letter in letters) == ["malformed_json", "unknown_action"]
    assert holds_by_account(await read_all(bootstrap, p + "freeze-actions"))["mule-9"] == "40000.00"


async def test_forged_acks_are_dead_lettered_as_unauthenticated_and_the_action_still_escalates(
    settings_with_keys: Settings, worker: InterceptionWorker
) -> None:
    bootstrap, p = settings_with_keys.bootstrap_servers or "", settings_with_keys.topic_prefix
    consumed, freeze, ack = await _mule_freeze_and_its_ack(settings_with_keys, worker)
    stranger = Ed25519Signer(Ed25519PrivateKey.generate())
    forged = [
        (p + "action-acks", ack),  # no signature
        (p + "action-acks", {**stranger.signed(ack), "kid": SCB_DESK.kid}),  # a signature SCB's key did not make
        (p + "action-acks", AIS_DESK.signed(ack)),  # another institution, signing with its own registered key
        (p + "action-acks.ais", ack),  # SCB's name on another institution's own topic
    ]
    await produce(bootstrap, forged)
    await wait_consumed(worker.metrics.registry, consumed + len(forged))

    # Still unacknowledged: re-issued past its 1 s SLA, and again.
    await _wait_for_version(bootstrap, p + "freeze-actions", freeze["action_id"], freeze["version"] + 2)
    letters = await read_all(bootstrap, p + "dead-letters")
    assert sorted((d["source_topic"], d["reason"]) for d in letters if "action-acks" in d["source_topic"]) == [
        (p + "action-acks", "unauthenticated")] * 3 + [(p + "action-acks.ais", "unauthenticated")]  # fmt: skip
    registry = worker.metrics.registry
    assert registry.get_sample_value("interceptor_acks_total", {"status": "executed"}) is None
    assert registry.get_sample_value("interceptor_money_held", {"institution": "SCB", "currency": "THB"}) is None


async def test_an_unsigned_ack_on_the_institutions_own_topic_stops_escalation(
    settings_with_keys: Settings, worker: InterceptionWorker
) -> None:
    bootstrap, p = settings_with_keys.bootstrap_servers or "", settings_with_keys.topic_prefix
    consumed, _, ack = await _mule_freeze_and_its_ack(settings_with_keys, worker)

    sent, settled = await _ack_until_settled(
        worker, bootstrap, p, p + "action-acks.scb", lambda version: {**ack, "version": version}, consumed
    )

    registry = worker.metrics.registry
    assert registry.get_sample_value("interceptor_acks_total", {"status": "executed"}) == sent
    assert registry.get_sample_value("interceptor_money_held", {"institution": "SCB", "currency": "THB"}) == 40000.0
    await asyncio.sleep(3.5)  # three SLA periods, many escalation checks: nothing more is issued
    assert _mule_freeze(await read_all(bootstrap, p + "freeze-actions"))["version"] == settled


async def _ack_until_settled(
    worker: InterceptionWorker, bootstrap: str, p: str, topic: str, ack_of: Callable[[int], dict], consumed: int
) -> tuple[int, int]:
    """SCB acks the latest version of its mule-9 freeze it has read, and again whenever an escalation crossed its
    ack on the way (an ack settles only the latest version; a bank reading on acks the new one too). Returns how
    many acks it sent and the version they settled; the worker has taken each one."""
    sent = 0
    version = _mule_freeze(await read_all(bootstrap, p + "freeze-actions"))["version"]
    while True:
        await produce(bootstrap, [(topic, ack_of(version))])
        sent += 1
        await wait_consumed(worker.metrics.registry, consumed + sent)
        latest = _mule_freeze(await read_all(bootstrap, p + "freeze-actions"))["version"]
        if latest == version:
            return sent, version
        assert sent < 5, "every ack crossed another escalation"
        version = latest


async def _mule_freeze_and_its_ack(settings: Settings, worker: InterceptionWorker) -> tuple[int, dict, dict]:
    """The scenario consumed (how many messages), SCB's freeze of mule-9, and SCB's unsigned ack of it."""
    bootstrap, p = settings.bootstrap_servers or "", settings.topic_prefix
    events = _scenario(settings)
    await produce(bootstrap, events)
    await wait_consumed(worker.metrics.registry, len(events))
    freeze = _mule_freeze(await read_all(bootstrap, p + "freeze-actions"))
    ack = {"action_id": freeze["action_id"], "version": freeze["version"], "addressee": "SCB",
           "status": "executed", "amount_held": "40000.00", "acked_at": iso(now())}  # fmt: skip
    return len(events), freeze, ack


def _mule_freeze(actions: list[dict]) -> dict:
    return next(a for a in latest_versions(actions).values() if a["target"]["account"] == "mule-9")


async def _wait_for_version(bootstrap: str, topic: str, action_id: str, version: int, timeout_s: float = 20) -> dict:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        for action in await read_all(bootstrap, topic):
            if action["action_id"] == action_id and action["version"] >= version:
                return action
        await asyncio.sleep(0.2)
    raise AssertionError(f"{action_id} never reached version {version}")
