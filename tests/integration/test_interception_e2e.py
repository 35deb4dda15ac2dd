"""A partner's-eye test: raw JSON into the input topics, freeze actions and dead letters out, real broker."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import pytest
from kafka_client import (
    HOUR,
    account,
    holds_by_account,
    latest_versions,
    now,
    produce,
    read_all,
    report,
    transaction,
    wait_consumed,
)

from pipeline.metrics import Metrics
from pipeline.settings import Settings
from pipeline.worker import InterceptionWorker

pytestmark = pytest.mark.integration

VICTIM, INNOCENT = account("KBANK", "victim-1"), account("BBL", "innocent-1")
MULE_1, MULE_2 = account("SCB", "mule-1"), account("KTB", "mule-2")
WALLET_3, CASH_OUT = account("TRUEMONEY", "wallet-3", "ewallet"), account("BINANCE-TH", "cash-out", "crypto")
T0 = now() - 18 * HOUR  # the victim paid 18 hours before reporting: the median delay

PAYMENT = transaction("pay-1", VICTIM, MULE_1, "100000.00", T0)
BEFORE_THEFT = transaction("before-1", MULE_1, INNOCENT, 5000, T0 - HOUR / 12)
HOP_1 = transaction("hop-1", MULE_1, MULE_2, "90000", T0 + HOUR / 30)
HOP_2 = transaction("hop-2", MULE_2, WALLET_3, 85000.0, T0 + HOUR / 15)
AFTER_WINDOW = transaction("late-1", WALLET_3, CASH_OUT, "1000", T0 + 80 * HOUR)
REPORT = report("R-1", T0 + 18 * HOUR, [PAYMENT])
EXPECTED_HOLDS = {"mule-1": "10000.00", "mule-2": "5000.00", "wallet-3": "85000.00"}

BAD_INPUT = {
    b'{"txn_id": "broken': "malformed_json",
    b'{"txn_id":"neg","from_account":{"institution":"A","account":"1"},"to_account":{"institution":"B","account":"2"},'
    b'"amount":"-5","currency":"THB","executed_at":"2026-11-23T10:00:00Z"}': "invalid_event",
    b'{"txn_id":"nozone","from_account":{"institution":"A","account":"1"},"to_account":{"institution":"B","account":"2"},'
    b'"amount":"5","currency":"THB","executed_at":"2026-11-23T10:00:00"}': "invalid_event",
    b'{"txn_id":"shape","from_account":"A/1","to_account":{"institution":"B","account":"2"},'
    b'"amount":"5","currency":"THB","executed_at":"2026-11-23T10:00:00Z"}': "invalid_event",
    b'{"padding":"' + b"x" * 70_000 + b'"}': "oversized",
}


@pytest.fixture
async def worker(settings: Settings) -> AsyncIterator[InterceptionWorker]:
    running = InterceptionWorker(settings, settings.bootstrap_servers or "", Metrics(settings.consumer_group))
    await running.start()
    await asyncio.wait_for(running.ready.wait(), timeout=30)
    yield running
    await running.stop()


def _topics(settings: Settings) -> tuple[str, str, str, str]:
    p = settings.topic_prefix
    return p + "bank-transactions", p + "victim-reports", p + "freeze-actions", p + "dead-letters"


async def test_freezes_every_account_on_the_trail_and_nothing_else(settings: Settings, worker: InterceptionWorker):
    bank, reports, actions_topic, dead_topic = _topics(settings)
    bootstrap = settings.bootstrap_servers or ""
    bad = [(bank, raw) for raw in BAD_INPUT]
    # The bank feed runs ahead of the report for the first hops and behind it for the rest; bad input in between.
    await produce(bootstrap, [(bank, BEFORE_THEFT), bad[0], (bank, PAYMENT), bad[1], (bank, HOP_1), bad[2]])
    await produce(bootstrap, [(reports, REPORT), (reports, b"[]")])
    await produce(bootstrap, [bad[3], (bank, HOP_2), bad[4], (bank, AFTER_WINDOW)])
    await wait_consumed(worker.metrics.registry, 5 + len(BAD_INPUT) + 2)

    actions, letters = await read_all(bootstrap, actions_topic), await read_all(bootstrap, dead_topic)
    assert holds_by_account(actions) == EXPECTED_HOLDS

    latest = latest_versions(actions)
    by_account = {a["target"]["account"]: a for a in latest.values()}
    assert set(by_account) == set(EXPECTED_HOLDS), "no action for money that left before the theft or after the window"
    assert by_account["mule-1"]["hop"] == 0 and by_account["wallet-3"]["hop"] == 2
    assert by_account["wallet-3"]["txn_ids"] == ["pay-1", "hop-1", "hop-2"]
    assert by_account["wallet-3"]["target"]["kind"] == "ewallet"
    assert all(a["report_ids"] == ["R-1"] for a in latest.values())
    # Most money sits at the end of the chain: act there first.
    assert by_account["wallet-3"]["priority"] > by_account["mule-2"]["priority"]
    assert sum(float(a["hold_amount"]) for a in latest.values()) <= 100_000

    reasons = sorted(letter["reason"] for letter in letters)
    assert reasons == sorted([*BAD_INPUT.values(), "invalid_event"])
    assert all(letter["error"] for letter in letters)
    assert {letter["source_topic"] for letter in letters} == {bank, reports}
    oversized = next(letter for letter in letters if letter["reason"] == "oversized")
    assert oversized["payload"].startswith('{"padding"') and "limit" in oversized["error"]


async def test_same_inputs_in_another_order_give_the_same_actions(kafka_bootstrap: str, tmp_path):
    from pipeline.broker import create_topics
    from pipeline.topics import catalogue

    inputs = [("bank", t) for t in (BEFORE_THEFT, PAYMENT, HOP_1, HOP_2, AFTER_WINDOW)] + [("reports", REPORT)]
    finals = []
    for seed in (1, 2):
        order = inputs[:]
        random.Random(seed).shuffle(order)
        settings = Settings(
            bootstrap_servers=kafka_bootstrap,
            topic_prefix=f"order{seed}-{tmp_path.name}.",
            consumer_group=f"order{seed}-{tmp_path.name}",
            insecure_dev_keys=True,
        )
        await create_topics(kafka_bootstrap, catalogue(0), settings.topic_prefix)
        bank, reports, actions_topic, _ = _topics(settings)
        worker = InterceptionWorker(settings, kafka_bootstrap, Metrics(settings.consumer_group))
        await worker.start()
        try:
            await asyncio.wait_for(worker.ready.wait(), timeout=30)
            for kind, message in order:  # one at a time, so each arrival is its own batch
                await produce(kafka_bootstrap, [(bank if kind == "bank" else reports, message)])
            await wait_consumed(worker.metrics.registry, len(order))
            actions = await read_all(kafka_bootstrap, actions_topic)
        finally:
            await worker.stop()
        finals.append(
            {
                a["action_id"]: (a["hold_amount"], a["priority"], a["hop"], a["txn_ids"], a["status"])
                for a in latest_versions(actions).values()
            }
        )
    assert finals[0] == finals[1]


async def test_redelivered_input_issues_no_new_versions(settings: Settings, worker: InterceptionWorker):
    bank, reports, actions_topic, _ = _topics(settings)
    bootstrap = settings.bootstrap_servers or ""
    everything = [(bank, PAYMENT), (bank, HOP_1), (bank, HOP_2), (reports, REPORT)]
    await produce(bootstrap, everything)
    await wait_consumed(worker.metrics.registry, len(everything))
    first = await read_all(bootstrap, actions_topic)
    assert holds_by_account(first) == EXPECTED_HOLDS
    await produce(bootstrap, everything)  # a partner replays its whole feed
    await wait_consumed(worker.metrics.registry, 2 * len(everything))
    assert _by_version(await read_all(bootstrap, actions_topic)) == _by_version(first)


def _by_version(actions: list[dict]) -> list[dict]:
    return sorted(actions, key=lambda a: (a["action_id"], a["version"]))
