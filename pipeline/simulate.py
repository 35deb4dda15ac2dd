"""``interceptor simulate`` (``make simulate``): the scam world through the real broker and worker, scored.

The world (``connectors.scam_world``) generates days of event time; this module publishes it
as fast as the worker takes it, in event-time order, so the pipeline sees only what happened
before each report, as it would in reality:

1. publish every message due before the report, and wait until the worker has committed them
   all (its consumed-records counters, which move only after a batch's actions are acknowledged);
2. note where the report's money is (the ledger's lots), publish the report, wait again.

Bank feeds arrive on three partitions, so without step 1 a report could overtake the transfers
before it. After the last message the freeze-actions topic is read back in full; what the
first versions after each report hold is scored against the ledger (``pipeline.effectiveness``)
and written to ``--out``: ``summary.json``, ``table.txt`` and ``effectiveness.png``.

``DirectPort`` runs the same steps through ``Interception`` without a broker, for fast tests.
The worker runs in this process, as in ``interception bench``; institutions' acks are not
published (the worker's SLA clock is the wall clock, and the world's time is compressed):
execution delays are simulated in the scoring instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
import uuid
from collections.abc import Awaitable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.structs import TopicPartition

from connectors.scam_world import ScamWorld, WireEvent
from connectors.scenario import Scenario, parse_duration
from pipeline.bench_retrace import Feed, consumed_records
from pipeline.broker import EmbeddedBroker, create_topics
from pipeline.effectiveness import (
    FreezeVersion,
    ReportScore,
    Rules,
    SentReport,
    score_reports,
    summarise,
    table,
)
from pipeline.errors import InterceptorError
from pipeline.interception import Interception
from pipeline.kafka import KafkaConnection
from pipeline.metrics import Metrics
from pipeline.recovery import partitions_of, read_partitions
from pipeline.settings import Settings
from pipeline.topics import FREEZE_ACTIONS, SUSPENSION_ACTIONS, catalogue
from pipeline.worker import InterceptionWorker
from processors.freeze_orders import FreezeOrder
from processors.money_trail import hub_reason
from schemas.fields import parse_timestamp_ms, to_minor_units

SETTLE_TIMEOUT_S = 120.0  # the worker made no progress for this long: something is wrong


class Port(Protocol):
    """Where the world's messages go, and what comes back."""

    async def send(self, event: WireEvent) -> None: ...
    async def settle(self) -> None: ...
    def wall_ms(self) -> int: ...


class Simulation:
    """One run: the world, the pipeline settings it runs with, and what came out."""

    def __init__(self, scenario: Scenario, settings: Settings) -> None:
        self.scenario = scenario
        self.world = ScamWorld(scenario)
        self.settings = settings.with_overrides(**pipeline_overrides(scenario))
        self.reports: list[SentReport] = []
        self.versions: list[FreezeVersion] = []
        self.suspended: set[str] = set()  # numbers with an active suspension
        self.wall_s = 0.0

    @property
    def rules(self) -> Rules:
        trace = self.settings.trace
        return Rules(trace.trace_window_ms, trace.max_hops, trace.history_retention_ms)

    async def drive(self, port: Port) -> None:
        """Publish the world in event-time order, stopping at each report until the pipeline has taken it."""
        started = time.perf_counter()
        ledger = self.world.ledger
        for event in self.world.events():
            if event.case is None:
                await port.send(event)
                continue
            await port.settle()
            case = self.world.cases[event.case]
            lots = tuple(ledger.lots_of(case.number))
            sent_ms = port.wall_ms()
            await port.send(event)
            await port.settle()
            self.reports.append(
                SentReport(case.report_id, case.number, event.at_ms, case.report_delay_ms, lots, sent_ms)
            )
        await port.settle()
        self.wall_s = time.perf_counter() - started

    def score(self) -> tuple[list[ReportScore], dict[str, Any]]:
        scores = score_reports(self.reports, self.versions, self.world.ledger, self.rules, self.execution_delay)
        summary = summarise(scores)
        summary["done_when"] = _done_when(summary["overall"])
        summary["telecom"] = self._telecom()
        summary["world"] = self._world_figures()
        summary["pipeline_settings"] = {
            "trace_window_h": self.settings.trace_window.total_seconds() / 3600,
            "max_hops": self.settings.max_hops,
            "hub_counterparties": self.settings.hub_counterparties,
            "history_retention_d": self.settings.history_retention.total_seconds() / 86400,
            "hub_accounts": sorted(self.settings.hub_accounts),
        }
        summary["scenario"] = self.scenario.model_dump(mode="json")
        return scores, summary

    def execution_delay(self, version: FreezeVersion) -> int | None:
        """When the institution executes this order, in ms after it is issued; None if it never does."""
        institutions = self.scenario.institutions
        kind = version.account[0]
        rng = random.Random(f"{self.scenario.seed}:execute:{version.action_id}:{version.version}")
        if rng.random() < institutions.never_share.get(kind, 0.0):
            return None
        delay = institutions.execute_delay.get(kind)
        if delay is None:
            return 0
        return int(delay.median.total_seconds() * 1000 * math.exp(rng.gauss(0, delay.sigma)))

    def _telecom(self) -> dict[str, int]:
        named = {case.caller for case in self.world.cases if case.reports and case.names_caller and case.transfers}
        gang = self.world.gang_phones
        return {
            "gang_numbers_named_in_reports": len(named),
            "gang_numbers_suspended": len(self.suspended & gang),
            "named_gang_numbers_suspended": len(self.suspended & named),
            "innocent_numbers_suspended": len(self.suspended - gang),
        }

    def _world_figures(self) -> dict[str, Any]:
        world = self.world
        return {
            "cases": len(world.cases),
            "reports": len(self.reports),
            "event_days": round((world.end_ms - world.start_ms) / 86_400_000, 2),
            "messages": dict(sorted(world.stats.items())),
            "freeze_versions": len(self.versions),
            "wall_s": round(self.wall_s, 1),
        }


def pipeline_overrides(scenario: Scenario) -> dict[str, Any]:
    """The scenario's ``pipeline`` section as settings overrides; durations may be written ``72h``."""
    overrides: dict[str, Any] = {}
    for key, value in scenario.pipeline.items():
        if key not in Settings.model_fields:
            raise InterceptorError(f"scenario pipeline: {key!r} is not a setting")
        annotation = Settings.model_fields[key].annotation
        overrides[key] = parse_duration(value) if annotation is timedelta else value
    return overrides


class DirectPort:
    """The pipeline's batch step (``Interception``) in this process, without a broker: for tests."""

    def __init__(self, simulation: Simulation) -> None:
        self.simulation = simulation
        self.interception = Interception(simulation.settings)
        self.feed = Feed(simulation.settings)
        self._pending: list[WireEvent] = []
        self._hubs = _hub_reasons(simulation.settings)

    async def send(self, event: WireEvent) -> None:
        self._pending.append(event)

    async def settle(self) -> None:
        if not self._pending:
            return
        now_ms = self._pending[-1].at_ms
        records = self.feed.records([(event.topic, event.value) for event in self._pending], now_ms)
        self._pending.clear()
        result = self.interception.process(records, now_ms)
        if result.rejected:
            raise InterceptorError(f"the pipeline rejected the world's input: {result.rejected[0].rejection}")
        self.simulation.versions += [_from_order(order, self._hubs) for order in result.orders]
        for suspension in result.suspensions:
            if suspension.target_type == "msisdn":
                (self.simulation.suspended.add if suspension.status == "active" else self.simulation.suspended.discard)(
                    suspension.target
                )

    def wall_ms(self) -> int:
        return 0


class BrokerPort:
    """Publishes to the broker; settling waits until the worker has committed everything published."""

    def __init__(self, settings: Settings, producer: AIOKafkaProducer, metrics: Metrics) -> None:
        self.settings = settings
        self.producer = producer
        self.metrics = metrics
        self._sent: dict[str, int] = {}
        self._deliveries: list[Awaitable[object]] = []

    async def send(self, event: WireEvent) -> None:
        topic = self.settings.topic(event.topic)
        self._deliveries.append(await self.producer.send(topic, event.value))
        self._sent[topic] = self._sent.get(topic, 0) + 1
        if len(self._deliveries) >= 10_000:
            await self._delivered()

    async def settle(self) -> None:
        await self._delivered()
        progress, deadline = -1, time.monotonic() + SETTLE_TIMEOUT_S
        while True:
            done = {topic: consumed_records(self.metrics, topic) for topic in self._sent}
            if all(done[topic] >= sent for topic, sent in self._sent.items()):
                return
            if sum(done.values()) != progress:
                progress, deadline = sum(done.values()), time.monotonic() + SETTLE_TIMEOUT_S
            elif time.monotonic() > deadline:
                raise InterceptorError(f"the worker stopped taking input: committed {done} of {self._sent}")
            await asyncio.sleep(0.001)

    def wall_ms(self) -> int:
        return int(time.time() * 1000)

    async def _delivered(self) -> None:
        deliveries, self._deliveries = self._deliveries, []
        await asyncio.gather(*deliveries)


async def simulate_through_broker(simulation: Simulation, bootstrap: str) -> None:
    """Run the world through the broker and an in-process worker, then read back every freeze action."""
    settings = simulation.settings
    kafka = KafkaConnection.of(settings, bootstrap)
    await create_topics(kafka, catalogue(0), settings.topic_prefix, settings.replication_factor)
    metrics = Metrics(settings.consumer_group)
    worker = InterceptionWorker(settings, bootstrap, metrics)
    producer = kafka.producer(linger_ms=2, max_batch_size=1 << 20)
    await worker.start()
    await producer.start()
    try:
        await asyncio.wait_for(worker.ready.wait(), timeout=60)
        await simulation.drive(BrokerPort(settings, producer, metrics))
    finally:
        await producer.stop()
        await worker.stop()
    hubs = _hub_reasons(settings)
    freeze_topic, suspension_topic = settings.topic(FREEZE_ACTIONS), settings.topic(SUSPENSION_ACTIONS)

    def take_freezes(records: Any) -> None:
        simulation.versions += [_from_wire(record.value, record.timestamp, hubs) for record in records if record.value]

    def take_suspensions(records: Any) -> None:
        for record in records:
            action = orjson.loads(record.value)
            if action["target_type"] == "msisdn":
                active = action["status"] == "active"
                (simulation.suspended.add if active else simulation.suspended.discard)(action["target"])

    for topic, take in ((freeze_topic, take_freezes), (suspension_topic, take_suspensions)):
        partitions = await partitions_of(kafka, topic)
        await read_partitions(kafka, {TopicPartition(topic, p): None for p in partitions}, take)


def simulation_settings(settings: Settings) -> Settings:
    """Its own topics and group, short polls (a report waits for one round trip), eviction that keeps up."""
    run = uuid.uuid4().hex[:8]
    return settings.with_overrides(
        topic_prefix=f"sim-{run}.",
        consumer_group=f"sim-{run}",
        batch_timeout_ms=2,
        fetch_max_wait_ms=2,
        housekeeping_interval_s=0.5,
    )


def run_simulation(settings: Settings, scenario: Scenario, out: Path) -> dict[str, Any]:
    """``interceptor simulate``: the embedded broker unless one is configured; writes and prints the results."""
    with contextlib.ExitStack() as stack:
        bootstrap = settings.bootstrap_servers
        if not bootstrap:
            out.mkdir(parents=True, exist_ok=True)
            bootstrap = stack.enter_context(EmbeddedBroker(port=0, log_path=out / "broker.log")).bootstrap
            settings = settings.with_overrides(replication_factor=1)
        simulation = Simulation(scenario, simulation_settings(settings))
        world = simulation.world
        print(f"scenario {scenario.name}, seed {scenario.seed}: {len(world.cases)} victims over "
              f"{scenario.attack_days:g} days, {(world.end_ms - world.start_ms) / 86_400_000:.1f} days of event time; "
              f"broker {bootstrap}", flush=True)  # fmt: skip
        asyncio.run(simulate_through_broker(simulation, bootstrap))
    scores, summary = simulation.score()
    write_results(out, scores, summary)
    print(table(summary), flush=True)
    print(verdict(summary), flush=True)
    print(f"written to {out}/: summary.json, table.txt, effectiveness.png", flush=True)
    return summary


def write_results(out: Path, scores: list[ReportScore], summary: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    (out / "table.txt").write_text(table(summary) + "\n" + verdict(summary) + "\n", encoding="utf-8")
    plot(summary, out / "effectiveness.png")


def verdict(summary: dict[str, Any]) -> str:
    done = summary["done_when"]
    lines = [
        f"frozen ÷ reachable {_pct(done['frozen_over_reachable'])} (target ≥ 99 %): "
        + ("met" if done["frozen_over_reachable_met"] else "NOT met"),
        f"median report → first freeze {done['median_report_to_first_freeze_s']} s (target < 5 s): "
        + ("met" if done["median_latency_met"] else "NOT met"),
    ]
    if done["held_under_any_order_over_reachable"] is not None:
        lines.append(
            f"reachable money under any order's hold, whichever report it names: "
            f"{_pct(done['held_under_any_order_over_reachable'])}"
        )
    if done["lost_thb_by_rule"]:
        lost = ", ".join(f"{rule} {amount:,.0f} THB" for rule, amount in done["lost_thb_by_rule"].items())
        lines.append(f"reachable money not frozen, by the rule that lost it: {lost}")
    return "\n".join(lines)


def plot(summary: dict[str, Any], path: Path) -> None:
    """Frozen ÷ reported and frozen ÷ reachable against report delay, with Thailand's published figures."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curve = summary["curve"]
    hours = [_bin_middle(point["from_h"], point["to_h"]) for point in curve]
    figure, axes = plt.subplots(figsize=(10, 6.8), dpi=110)
    series = (
        ("reachable_over_reported", "reachable ÷ reported: still in the banking system (the limit)", ":", "grey"),
        ("frozen_over_reachable", "frozen ÷ reachable: of what could still be held", "-", "tab:green"),
        ("frozen_over_reported", "frozen ÷ reported: Thailand's KPI", "-", "tab:blue"),
    )
    for key, label, style, colour in series:
        points = [(h, 100 * p[key]) for h, p in zip(hours, curve, strict=True) if p[key] is not None]
        axes.plot([h for h, _ in points], [v for _, v in points], style, marker="o", color=colour, label=label)
    overall = summary["overall"]["frozen_over_reported"]
    if overall is not None:
        axes.axhline(100 * overall, color="tab:blue", linestyle="--", linewidth=1,
                     label=f"this run, every report: {100 * overall:.0f} % frozen ÷ reported")  # fmt: skip
    thai = summary["thai_published"]
    axes.axhline(
        100 * thai[0]["frozen_over_reported"],
        color="tab:red",
        linestyle="-.",
        linewidth=1.2,
        label=f"Thai police before the war room (2022-23): {100 * thai[0]['frozen_over_reported']:.0f} %",
    )
    low, high = (100 * thai[i]["frozen_over_reported"] for i in (1, 2))
    axes.axhspan(low, high, color="tab:red", alpha=0.12,
                 label=f"AOC 1441 war room (Nov 2023 - Feb 2024): {low:.0f}-{high:.0f} %")  # fmt: skip
    axes.axvline(18, color="black", alpha=0.35, linestyle="--", linewidth=1)
    axes.text(18 * 1.05, 101, "median report: 18 h", fontsize=8, alpha=0.7)
    axes.set_xscale("log")
    ticks = [(5 / 60, "5 min"), (0.25, "15 min"), (1, "1 h"), (6, "6 h"), (24, "24 h"), (72, "72 h"), (168, "7 d")]
    axes.set_xticks([t for t, _ in ticks], [label for _, label in ticks])
    axes.set_ylim(0, 108)
    axes.set_xlabel("report delay: from the victim's last payment to the report (log scale)")
    axes.set_ylabel("% of the money")
    world = summary["world"]
    axes.set_title(f"Interception effectiveness: {summary['scenario']['name']}, seed {summary['scenario']['seed']}, "
                   f"{world['reports']} reports, first freeze orders after each report", fontsize=10)  # fmt: skip
    axes.grid(True, which="major", alpha=0.3)
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, fontsize=8, frameon=False)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def _bin_middle(low_h: float, high_h: float | None) -> float:
    if high_h is None:
        return low_h * 1.4
    return (max(low_h, 1 / 60) * high_h) ** 0.5 if low_h else high_h / 2


def _done_when(overall: dict[str, Any]) -> dict[str, Any]:
    latency = overall["report_to_first_freeze_s"]
    median = latency["p50"] if latency else None
    ratio = overall["frozen_over_reachable"]
    return {
        "frozen_over_reachable": ratio,
        "frozen_over_reachable_met": ratio is not None and ratio >= 0.99,
        "median_report_to_first_freeze_s": median,
        "median_latency_met": median is not None and median < 5,
        "lost_thb_by_rule": overall["lost_thb_by_rule"],
        "held_under_any_order_over_reachable": overall["held_under_any_order_over_reachable"],
    }


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def _hub_reasons(settings: Settings) -> frozenset[str]:
    return frozenset({hub_reason(True, 0), hub_reason(False, settings.hub_counterparties)})


def _from_wire(raw: bytes, published_ms: int, hubs: frozenset[str]) -> FreezeVersion:
    action = orjson.loads(raw)
    target, currency = action["target"], action["currency"]
    hold = to_minor_units(Decimal(action["hold_amount"]), currency) if action["status"] == "active" else 0
    return FreezeVersion(
        action_id=action["action_id"],
        version=action["version"],
        account=(target.get("kind", "bank"), target["institution"], target["account"]),
        currency=currency,
        hold=hold,
        report_ids=tuple(action["report_ids"]),
        complete=action["report_ids_total"] == len(action["report_ids"]),
        hub=any(reason in hubs for reason in action["reasons"]),
        issued_at_ms=parse_timestamp_ms(action["issued_at"]),
        published_ms=published_ms,
        trail=tuple((step["txn_id"], tuple(step["report_ids"])) for step in action["trail"]),
    )


def _from_order(order: FreezeOrder, hubs: frozenset[str]) -> FreezeVersion:
    return FreezeVersion(
        action_id=order.action_id,
        version=order.version,
        account=order.target,
        currency=order.currency,
        hold=order.hold if order.status == "active" else 0,
        report_ids=order.report_ids,
        complete=True,
        hub=any(reason in hubs for reason in order.reasons),
        issued_at_ms=order.issued_at_ms,
        trail=tuple((step.txn_id, step.report_ids) for step in order.trail),
    )
