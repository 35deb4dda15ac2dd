"""Two banks and two operators, each reading only its own topics, on a real broker.

A partner's own topics are ``freeze-actions.<it>``, ``suspension-actions.<it>``,
``dead-letters.<it>`` and ``victim-warnings.<it>``. None of them may carry another
institution's account number in clear, another operator's warning, a victim's id, or a
field of a rejected message outside the contract; the war room's shared topics carry it all.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
import pytest
from kafka_client import (
    HOUR,
    account,
    iso,
    now,
    produce,
    read_all,
    read_raw,
    report,
    signed_by_war_room,
    transaction,
    wait_consumed,
)

from pipeline.metrics import Metrics
from pipeline.settings import Settings
from pipeline.worker import InterceptionWorker

pytestmark = pytest.mark.integration

SCB_VICTIM, KBANK_MULE, SCB_MULE = "SCBV-1111", "KBM-2222", "SCBM-3333"
KBANK_VICTIM, SCB_MULE_2 = "KBV-4444", "SCBM-5555"
KBANK_BAD, SCB_BAD, SCB_BAD_2, NOBODYS = "KBX-6666", "SCBX-7777", "SCBX-8888", "KBX-9999"
ACCOUNTS = {
    "KBANK": {KBANK_MULE, KBANK_VICTIM, KBANK_BAD},
    "SCB": {SCB_VICTIM, SCB_MULE, SCB_MULE_2, SCB_BAD, SCB_BAD_2},
}
SCAMMER, WARN_AT_AIS, WARN_AT_TRUE, FRIEND = "+66811111111", "+66822222222", "+66833333333", "+66844444444"
VICTIM_IDS = ("victim-of-R-1", "victim-of-R-2", "victim-id-in-a-bad-report")
HOLDER = "Somchai Holder-Name"


@pytest.fixture
async def worker(settings: Settings) -> AsyncIterator[InterceptionWorker]:
    configured = settings.with_overrides(pseudonym_key="war-room-pseudonym-key")
    running = InterceptionWorker(configured, configured.bootstrap_servers or "", Metrics("g"))
    await running.start()
    await asyncio.wait_for(running.ready.wait(), timeout=30)
    yield running
    await running.stop()


def _telecom(event_id: str, operator: str, kind: str, msisdn: str, at, **extra) -> dict:
    return {"event_id": event_id, "operator": operator, "kind": kind, "msisdn": msisdn, "occurred_at": iso(at), **extra}


def _scenario(p: str) -> list[tuple[str, dict | bytes]]:
    reported_at = now()
    paid_at = reported_at - 2 * HOUR
    pay_1 = transaction("pay-1", account("SCB", SCB_VICTIM), account("KBANK", KBANK_MULE), "50000.00", paid_at)
    move_1 = transaction(
        "move-1", account("KBANK", KBANK_MULE), account("SCB", SCB_MULE), "30000.00", paid_at + HOUR / 6
    )
    pay_2 = transaction("pay-2", account("KBANK", KBANK_VICTIM), account("SCB", SCB_MULE_2), "20000.00", paid_at)
    report_1 = {**report("R-1", reported_at, [pay_1]), "scammer_phones": [SCAMMER]}
    bad_report = {**report("R-3", reported_at, [pay_2]), "country": "Thailand", "victim_id": VICTIM_IDS[2]}
    between_banks = {**transaction("bad-1", account("KBANK", KBANK_BAD), account("SCB", SCB_BAD), "-5", paid_at),
                     "holder_name": HOLDER}  # fmt: skip
    bad_target = transaction("bad-2", account("SCB", SCB_BAD_2), account("", NOBODYS), "10.00", paid_at)
    calls = p + "telecom-events"
    return [
        (calls, _telecom("e1", "AIS", "call", SCAMMER, paid_at - HOUR, counterparty_msisdn=WARN_AT_AIS)),
        (calls, _telecom("e2", "AIS", "call", SCAMMER, paid_at - HOUR, counterparty_msisdn=WARN_AT_TRUE)),
        (calls, _telecom("e3", "AIS", "sms", WARN_AT_AIS, paid_at - 3 * HOUR, counterparty_msisdn=FRIEND)),
        (calls, _telecom("e4", "TRUE", "sms", WARN_AT_TRUE, paid_at - 3 * HOUR, counterparty_msisdn=FRIEND)),
        (calls, _telecom("bad-3", "TRUE", "data_session", WARN_AT_TRUE, paid_at)),  # no ip
        (p + "bank-transactions", pay_1),
        (p + "bank-transactions", move_1),
        (p + "bank-transactions", pay_2),
        (p + "bank-transactions", between_banks),
        (p + "bank-transactions", bad_target),
        (p + "bank-transactions", b"{not json, " + SCB_BAD.encode()),
        (p + "victim-reports", report_1),
        (p + "victim-reports", report("R-2", reported_at, [pay_2])),
        (p + "victim-reports", bad_report),
    ]  # fmt: skip


async def _own_topics(bootstrap: str, p: str, partner: str) -> dict[str, list[bytes]]:
    kinds = ("freeze-actions", "suspension-actions", "dead-letters", "victim-warnings")
    return {kind: await read_raw(bootstrap, f"{p}{kind}.{partner}") for kind in kinds}


async def test_a_partner_reading_only_its_own_topics_sees_nothing_of_another_partner(
    settings: Settings, worker: InterceptionWorker
) -> None:
    bootstrap, p = settings.bootstrap_servers or "", settings.topic_prefix
    events = _scenario(p)
    await produce(bootstrap, events)
    await wait_consumed(worker.metrics.registry, len(events))

    seen = {partner: await _own_topics(bootstrap, p, partner) for partner in ("kbank", "scb", "ais", "true")}
    text = {partner: b"\n".join(v for values in topics.values() for v in values) for partner, topics in seen.items()}
    every_account = ACCOUNTS["KBANK"] | ACCOUNTS["SCB"] | {NOBODYS}
    forbidden = {
        "kbank": every_account - ACCOUNTS["KBANK"],
        "scb": every_account - ACCOUNTS["SCB"],
        "ais": every_account | {WARN_AT_TRUE},
        "true": every_account | {WARN_AT_AIS},
    }
    for partner, values in forbidden.items():
        for secret in (*values, *VICTIM_IDS, HOLDER):
            assert secret.encode() not in text[partner], f"{partner} can read {secret}"

    # What each partner does get: its own orders, warnings and rejected input, signed for it.
    kbank, scb, ais, true = seen["kbank"], seen["scb"], seen["ais"], seen["true"]
    freezes = {a["target"]["account"]: a for a in map(orjson.loads, kbank["freeze-actions"] + scb["freeze-actions"])}
    assert set(freezes) == {KBANK_MULE, SCB_MULE, SCB_MULE_2}
    assert settings.signing_key_dir is not None
    for raw in kbank["freeze-actions"] + scb["freeze-actions"]:
        assert signed_by_war_room(raw, settings.signing_key_dir), "a copy verifies with the published key, as sent"
    [step] = freezes[KBANK_MULE]["trail"]
    assert step["from_account"]["institution"] == "SCB" and step["from_account"]["account"].startswith("pseud:")
    assert step["to_account"]["account"] == KBANK_MULE, "an institution's own account stays in clear"
    assert [w["msisdn"] for w in map(orjson.loads, ais["victim-warnings"])] == [WARN_AT_AIS]
    assert [w["msisdn"] for w in map(orjson.loads, true["victim-warnings"])] == [WARN_AT_TRUE]
    assert [s["target"] for s in map(orjson.loads, ais["suspension-actions"])] == [SCAMMER]
    assert not true["suspension-actions"] and not ais["dead-letters"]
    letters = {partner: [orjson.loads(v) for v in seen[partner]["dead-letters"]] for partner in seen}
    assert {(d["partner"], d["reason"]) for d in letters["kbank"]} == {("KBANK", "invalid_event")}
    assert sorted(orjson.loads(d["payload"])["txn_id"] for d in letters["scb"]) == ["bad-1", "bad-2"]
    [at_true] = letters["true"]
    assert orjson.loads(at_true["payload"])["event_id"] == "bad-3" and "ip" in at_true["error"]

    # The war room's shared topics keep everything, in clear, and it alone can reveal a pseudonym.
    shared = await read_all(bootstrap, p + "freeze-actions")
    clear = next(a for a in shared if a["target"]["account"] == KBANK_MULE)["trail"][0]["from_account"]
    assert clear["account"] == SCB_VICTIM
    revealed = settings.with_overrides(pseudonym_key="war-room-pseudonym-key").pseudonyms.reveal(
        step["from_account"]["account"], [(clear["kind"], clear["institution"], clear["account"])]
    )
    assert revealed == ("bank", "SCB", SCB_VICTIM)
    everything = await read_all(bootstrap, p + "dead-letters")
    assert len(everything) == 5 and {d["partner"] for d in everything} == {None}
    assert {w["msisdn"] for w in await read_all(bootstrap, p + "victim-warnings")} == {WARN_AT_AIS, WARN_AT_TRUE}
