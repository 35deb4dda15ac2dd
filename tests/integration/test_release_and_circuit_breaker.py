"""Release on appeal, release of expired holds, and the circuit breaker, as institutions see them on a real broker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
from kafka_client import (
    Message,
    account,
    collect,
    iso,
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


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[InterceptionWorker]:
    worker = InterceptionWorker(settings, settings.bootstrap_servers or "", Metrics(settings.consumer_group))
    await worker.start()
    try:
        await asyncio.wait_for(worker.ready.wait(), timeout=30)
        yield worker
    finally:
        await worker.stop()


def release_request(request_id: str, action_id: str, requester: str = "KBANK") -> Message:
    return {
        "request_id": request_id,
        "action_id": action_id,
        "requester": requester,
        "reason": "the customer showed the incoming money is a salary",
        "requested_at": iso(now()),
    }


def one_payment(report_id: str, mule: str, institution: str = "KBANK") -> tuple[Message, Message]:
    paid = transaction(
        f"pay-{report_id}", account("BBL", f"victim-{report_id}"), account(institution, mule), 9000, now()
    )
    return paid, report(report_id, now(), [paid])


def answered(answers: list[Message], request_id: str) -> bool:
    return any(answer["request_id"] == request_id for answer in answers)


def latest(actions: list[Message], action_id: str) -> Message:
    return latest_versions(actions)[action_id]


def gauge(worker: InterceptionWorker, name: str, **labels: str) -> float | None:
    return worker.metrics.registry.get_sample_value(name, labels)


async def test_a_release_is_refused_while_reports_arrive_and_granted_after_the_quiet_period(settings: Settings) -> None:
    quiet_s = 3.0
    settings = settings.with_overrides(release_quiet_period=f"PT{quiet_s:g}S", release_requesters=["KBANK"])
    bootstrap, p = settings.bootstrap_servers or "", settings.topic_prefix
    async with running(settings) as worker:
        _, the_report = one_payment("R-1", "mule-1")
        await produce(bootstrap, [(p + "victim-reports", the_report)])
        (order,) = await collect(bootstrap, p + "freeze-actions.kbank", lambda got: len(got) >= 1)
        reported_at_s = time.time()

        await produce(bootstrap, [(p + "release-requests.kbank", release_request("appeal-1", order["action_id"]))])
        (refused,) = await collect(bootstrap, p + "release-answers.kbank", lambda got: len(got) >= 1)

        assert (refused["decision"], refused["reason"]) == ("refused", "reports_still_arriving")
        assert refused["request_id"] == "appeal-1"
        assert latest(await read_all(bootstrap, p + "freeze-actions"), order["action_id"])["status"] == "active"

        # Another bank cannot ask for KBANK's action, and an unsigned request on the shared topic is refused.
        await produce(
            bootstrap,
            [
                (p + "release-requests.kbank", release_request("forged", order["action_id"], requester="SCB")),
                (p + "release-requests", release_request("unsigned", order["action_id"])),
            ],
        )
        letters = await collect(bootstrap, p + "dead-letters", lambda got: len(got) >= 2)
        assert sorted(letter["reason"] for letter in letters) == ["unauthenticated", "unauthenticated"]

        # The quiet period is counted in broker time from the report's arrival: wait it out, then ask again.
        await asyncio.sleep(max(0.0, reported_at_s + quiet_s + 0.5 - time.time()))
        await produce(bootstrap, [(p + "release-requests.kbank", release_request("appeal-2", order["action_id"]))])
        answers = await collect(bootstrap, p + "release-answers.kbank", lambda got: answered(got, "appeal-2"))
        (granted,) = {a["request_id"]: a for a in answers if a["request_id"] == "appeal-2"}.values()
        routed = await collect(bootstrap, p + "freeze-actions.kbank", lambda got: len(got) >= 2)

        assert (granted["decision"], granted["reason"], granted["released_version"]) == ("granted", "granted", 2), (
            granted
        )
        released = latest(routed, order["action_id"])
        assert (released["version"], released["status"], released["hold_amount"]) == (2, "released", "0.00")
        assert released["reasons"][0].startswith("released on appeal by kbank (request appeal-2)")
        assert gauge(worker, "interceptor_release_decisions_total", reason="granted") == 1

        # Money moving on changes the trace, but no new report arrived: the grant stands.
        onward = transaction("onward-1", account("KBANK", "mule-1"), account("SCB", "mule-2"), 4000, now())
        await produce(bootstrap, [(p + "bank-transactions", onward)])
        await wait_consumed(worker.metrics.registry, 6)
        assert latest(await read_all(bootstrap, p + "freeze-actions"), order["action_id"])["version"] == 2


async def test_a_hold_past_hold_expires_at_without_renewal_is_released(settings: Settings) -> None:
    settings = settings.with_overrides(hold_duration="PT3S", escalation_check_interval_s=0.2)
    bootstrap, p = settings.bootstrap_servers or "", settings.topic_prefix
    async with running(settings):
        _, the_report = one_payment("R-2", "mule-3")
        await produce(bootstrap, [(p + "victim-reports", the_report)])

        actions = await collect(bootstrap, p + "freeze-actions.kbank", lambda got: len(got) >= 2, timeout_s=20)

    first, second = actions[:2]
    assert (first["version"], first["status"]) == (1, "active")
    assert (second["version"], second["status"], second["hold_amount"]) == (2, "released", "0.00")
    assert "hold expired" in second["reasons"][0]
    assert second["issued_at"] >= first["hold_expires_at"]


def flood(settings: Settings, institution: str, mules: int) -> list[tuple[str, Message]]:
    """One report whose victim paid ``mules`` accounts at ``institution``: one freeze order each."""
    paid = [
        transaction(
            f"flood-{institution}-{i}", account("BBL", "victim"), account(institution, f"m{i}"), 1000 + i, now()
        )
        for i in range(mules)
    ]
    return [(settings.topic_prefix + "victim-reports", report(f"R-{institution}", now(), paid))]


async def until_count(bootstrap: str, topic: str, count: int, timeout_s: float = 30) -> list[Message]:
    enough: Callable[[list[Message]], bool] = lambda got: len(got) >= count  # noqa: E731
    return await collect(bootstrap, topic, enough, timeout_s=timeout_s)


async def test_a_flood_to_one_bank_is_capped_the_rest_arrive_later_and_another_bank_is_unaffected(
    settings: Settings,
) -> None:
    settings = settings.with_overrides(
        max_actions_per_institution=3, circuit_breaker_window="PT4S", escalation_check_interval_s=0.2
    )
    bootstrap, p = settings.bootstrap_servers or "", settings.topic_prefix
    async with running(settings) as worker:
        await produce(bootstrap, [*flood(settings, "KBANK", 8), *flood(settings, "SCB", 2)])
        scb = await until_count(bootstrap, p + "freeze-actions.scb", 2)
        kbank_first = await read_all(bootstrap, p + "freeze-actions.kbank")

        assert len(scb) == 2  # the other bank is not held back
        assert len(kbank_first) == 3
        assert gauge(worker, "interceptor_circuit_open", institution="KBANK") == 1
        assert gauge(worker, "interceptor_actions_held_back", institution="KBANK") == 5
        assert gauge(worker, "interceptor_circuit_open", institution="SCB") in (None, 0)

        kbank = await until_count(bootstrap, p + "freeze-actions.kbank", 8)

    assert {a["target"]["account"] for a in kbank} == {f"m{i}" for i in range(8)}  # nothing lost
    assert all(a["status"] == "active" and a["version"] == 1 for a in kbank)
    priorities = [a["priority"] for a in kbank]
    assert min(priorities[:3]) >= max(priorities[3:])  # the highest priority went first


async def test_held_back_actions_survive_a_restart(settings: Settings) -> None:
    held = settings.with_overrides(max_actions_per_institution=2, circuit_breaker_window="PT1H")
    bootstrap, p = settings.bootstrap_servers or "", settings.topic_prefix
    async with running(held) as worker:
        await produce(bootstrap, flood(settings, "KBANK", 6))
        await wait_consumed(worker.metrics.registry, 1)
        assert len(await until_count(bootstrap, p + "freeze-actions.kbank", 2)) == 2
        assert gauge(worker, "interceptor_actions_held_back", institution="KBANK") == 4

    # The worker stops with four actions waiting in memory; the next one reads them back and sends them.
    reopened = settings.with_overrides(
        max_actions_per_institution=2, circuit_breaker_window="PT1S", escalation_check_interval_s=0.2
    )
    async with running(reopened) as worker:
        assert gauge(worker, "interceptor_actions_held_back", institution="KBANK") == 4
        kbank = await until_count(bootstrap, p + "freeze-actions.kbank", 6)

    assert sorted(a["target"]["account"] for a in kbank) == [f"m{i}" for i in range(6)]
    assert all(a["version"] == 1 for a in kbank)  # restored, not decided again as new versions
