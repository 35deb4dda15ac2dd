"""The money-trail rules (``processors.trace_reference``), each pattern end to end through a real broker.

Every test gets fresh topics and its own worker, sends raw JSON as a partner would,
waits until the worker has consumed (and so published and committed) all of it, and
checks the latest version of each freeze action.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import orjson
import pytest
from kafka_client import (
    HOUR,
    Message,
    account,
    holds_by_account,
    latest_versions,
    now,
    produce,
    read_all,
    read_raw,
    report,
    transaction,
    wait_consumed,
)

from pipeline.metrics import Metrics
from pipeline.settings import Settings
from pipeline.worker import InterceptionWorker

pytestmark = pytest.mark.integration

SECOND, MINUTE = timedelta(seconds=1), timedelta(minutes=1)
T0 = now() - 18 * HOUR  # victims report about 18 hours after paying
VICTIM = account("KBANK", "victim")
A, B = account("SCB", "mule-a"), account("KTB", "mule-b")


class Pipeline:
    """One worker on fresh topics: send inputs, read back what it published."""

    def __init__(self, settings: Settings, worker: InterceptionWorker) -> None:
        self.settings, self.worker = settings, worker
        self.bootstrap = settings.bootstrap_servers or ""
        self.sent = 0

    def topic(self, name: str) -> str:
        return self.settings.topic_prefix + name

    async def send(self, *messages: Message, timeout_s: float = 30.0) -> None:
        """Produce reports and bank transactions, then wait until the worker has consumed every one."""
        topics = [self.topic("victim-reports" if "report_id" in m else "bank-transactions") for m in messages]
        self.sent += await produce(self.bootstrap, zip(topics, messages, strict=True))
        await wait_consumed(self.worker.metrics.registry, self.sent, timeout_s)

    async def actions(self) -> dict[str, Message]:
        """The latest version of every freeze action, by target account number."""
        latest = latest_versions(await read_all(self.bootstrap, self.topic("freeze-actions")))
        by_account = {a["target"]["account"]: a for a in latest.values()}
        assert len(by_account) == len(latest), "one action per account (all in one currency here)"
        return by_account

    async def holds(self) -> dict[str, str]:
        """Where money is held: account -> hold of its active order, pass-through accounts (hold 0) left out."""
        held = holds_by_account(await read_all(self.bootstrap, self.topic("freeze-actions")))
        return {number: amount for number, amount in held.items() if amount != "0.00"}


@pytest.fixture
async def pipeline(settings: Settings) -> AsyncIterator[Pipeline]:
    worker = InterceptionWorker(settings, settings.bootstrap_servers or "", Metrics(settings.consumer_group))
    await worker.start()
    await asyncio.wait_for(worker.ready.wait(), timeout=30)
    yield Pipeline(settings, worker)
    await worker.stop()


def reported(report_id: str, *transfers: Message, revision: int = 1) -> Message:
    return {**report(report_id, T0 + 18 * HOUR, list(transfers)), "revision": revision}


def holds_nothing(action: Message | None) -> bool:
    """No action, a released one, or a pass-through (active, hold 0)."""
    return action is None or action["status"] == "released" or action["hold_amount"] == "0.00"


async def test_moving_money_within_one_account_is_not_a_hop(pipeline: Pipeline):
    pay = transaction("pay", VICTIM, A, "10000.00", T0)
    to_itself = [transaction(f"self-{i}", A, A, "10000.00", T0 + (i + 1) * MINUTE) for i in range(5)]
    await pipeline.send(pay, *to_itself, reported("R-1", pay))

    actions = await pipeline.actions()
    assert set(actions) == {"mule-a"}
    mule_a = actions["mule-a"]
    assert (mule_a["status"], mule_a["hold_amount"], mule_a["hop"]) == ("active", "10000.00", 0)
    assert mule_a["tainted_moved_on"] == "0.00" and mule_a["txn_ids"] == ["pay"]


async def test_money_bouncing_between_two_accounts_rests_where_it_ends(pipeline: Pipeline):
    pay = transaction("pay", VICTIM, A, "10000.00", T0)
    legs = [A, B, A, B, A, B]
    bounces = [transaction(f"bounce-{i}", legs[i], legs[i + 1], "10000.00", T0 + (i + 1) * MINUTE) for i in range(5)]
    await pipeline.send(pay, *bounces, reported("R-1", pay))

    actions = await pipeline.actions()
    assert await pipeline.holds() == {"mule-b": "10000.00"}
    assert actions["mule-b"]["hop"] == 1, "B's distance from the victim is one hop, however often the money bounced"
    assert actions["mule-b"]["report_ids"] == ["R-1"]
    assert holds_nothing(actions.get("mule-a")), actions.get("mule-a")


async def test_a_victim_who_is_also_a_mule_is_not_counted_twice(pipeline: Pipeline):
    w, v, m = account("KBANK", "w"), account("SCB", "v"), account("KTB", "m")
    w_pays_v = transaction("w-v", w, v, "500.00", T0)
    v_pays_m = transaction("v-m", v, m, "300.00", T0 + 10 * MINUTE)
    await pipeline.send(w_pays_v, v_pays_m, reported("R-W", w_pays_v), reported("R-V", v_pays_m))

    actions = await pipeline.actions()
    assert actions["m"]["hold_amount"] == "300.00", "V's 300 is W's money: counted once, not 600"
    assert actions["m"]["tainted_received"] == "300.00"
    assert actions["m"]["report_ids"] == ["R-V", "R-W"]
    assert actions["v"]["hold_amount"] == "200.00"


async def test_a_transfer_named_in_two_reports_is_counted_once(pipeline: Pipeline):
    pay = transaction("shared-1", VICTIM, B, "1000.00", T0)
    await pipeline.send(reported("R-1", pay), reported("R-2", pay))

    actions = await pipeline.actions()
    assert await pipeline.holds() == {"mule-b": "1000.00"}
    assert actions["mule-b"]["tainted_received"] == "1000.00"
    assert actions["mule-b"]["report_ids"] == ["R-1", "R-2"]


async def test_the_bank_feeds_time_wins_over_the_victims(pipeline: Pipeline):
    pay = transaction("pay", VICTIM, A, "5000.00", T0)  # executed 10:00
    forward = transaction("fwd", A, B, "5000.00", T0 + MINUTE)  # 10:01
    remembered = {**pay, "executed_at": (T0 + 2 * MINUTE).isoformat()}  # the victim recalls 10:02
    # The report first, on its own: the feed then corrects a trace already made.
    await pipeline.send(reported("R-1", remembered))
    await pipeline.send(pay, forward)

    actions = await pipeline.actions()
    assert await pipeline.holds() == {"mule-b": "5000.00"}
    assert actions["mule-b"]["hop"] == 1 and actions["mule-b"]["txn_ids"] == ["pay", "fwd"]
    assert holds_nothing(actions.get("mule-a")), actions.get("mule-a")


async def test_a_hub_holds_what_it_received_and_its_customers_are_left_alone(pipeline: Pipeline):
    hub = account("KBANK", "omnibus-hub")
    regulars = [account("BBL", f"regular-{i}") for i in range(60)]
    payees = [account("BAY", f"payee-{i}") for i in range(300)]
    usual_business = [
        *(transaction(f"in-{i}", c, hub, "500.00", T0 - 2 * HOUR + i * MINUTE) for i, c in enumerate(regulars)),
        *(transaction(f"out-{i}", hub, c, "200.00", T0 + HOUR + i * MINUTE) for i, c in enumerate(regulars)),
    ]
    pay = transaction("pay", VICTIM, hub, "1000.00", T0)
    payouts = [transaction(f"payout-{i}", hub, c, "100.00", T0 + (i + 1) * SECOND) for i, c in enumerate(payees)]
    await pipeline.send(*usual_business, pay, *payouts, reported("R-1", pay))

    actions = await pipeline.actions()
    assert set(actions) == {"omnibus-hub"}, "no customer of the hub gets a freeze action"
    held = actions["omnibus-hub"]
    assert (held["status"], held["hold_amount"], held["hop"]) == ("active", "1000.00", 0)
    assert any("hub" in reason for reason in held["reasons"]), held["reasons"]


async def test_twenty_thousand_small_amounts_make_one_bounded_action(pipeline: Pipeline):
    count = 20_000
    mule_x = account("SCB", "mule-x")
    reports = [
        reported(f"R-{i:05d}", transaction(f"small-{i:05d}", account("KBANK", f"victim-{i:05d}"), mule_x, "1.00", T0))
        for i in range(count)
    ]
    await pipeline.send(*reports, timeout_s=60)

    raw = await read_raw(pipeline.bootstrap, pipeline.topic("freeze-actions"))
    size_of = {(a["action_id"], a["version"]): len(value) for value in raw for a in [orjson.loads(value)]}
    [action] = latest_versions([orjson.loads(value) for value in raw]).values()
    assert action["target"]["account"] == "mule-x"
    assert (action["status"], action["hold_amount"]) == ("active", "20000.00")
    assert action["trail_steps_total"] == count and action["report_ids_total"] == count
    size = size_of[(action["action_id"], action["version"])]
    assert size < pipeline.settings.max_action_bytes and size < 1 << 20, size
    assert max(size_of.values()) < pipeline.settings.max_action_bytes, "no published version is larger"


@pytest.mark.parametrize("order", ["correction last", "correction first"])
async def test_a_corrected_report_moves_the_hold_in_any_arrival_order(pipeline: Pipeline, order: str):
    first = reported("R-1", transaction("c-1", VICTIM, A, "1000.00", T0))
    corrected = reported("R-1", transaction("c-1", VICTIM, B, "1000.00", T0), revision=2)
    for revision in [first, corrected] if order == "correction last" else [corrected, first]:
        await pipeline.send(revision)  # one at a time: each revision is its own batch

    actions = await pipeline.actions()
    assert await pipeline.holds() == {"mule-b": "1000.00"}
    assert actions["mule-b"]["report_ids"] == ["R-1"]
    if order == "correction last":
        assert actions["mule-a"]["status"] == "released", actions["mule-a"]
    else:
        assert holds_nothing(actions.get("mule-a")), actions.get("mule-a")

    conflicting = reported("R-1", transaction("c-1", VICTIM, B, "900.00", T0), revision=2)
    await pipeline.send(conflicting)
    letters = await read_all(pipeline.bootstrap, pipeline.topic("dead-letters"))
    assert [letter["reason"] for letter in letters] == ["conflicting_revision"]
    assert await pipeline.holds() == {"mule-b": "1000.00"}, "the revision first received stays in force"
