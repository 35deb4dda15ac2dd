"""``interceptor demo`` (what ``make run`` runs): the whole system on one machine, watched live.

It starts the embedded broker (unless KAFKA_BOOTSTRAP_SERVERS is set), the worker
as its own process, and the synthetic scenario feed; prints every freeze action
as it arrives; and on Ctrl-C or after ``--duration`` prints a summary and stops
everything it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import orjson

from connectors.institutions import InstitutionDesk
from connectors.synthetic_feed import TELECOM_OPERATORS, THAI_INSTITUTIONS, FeedSettings, ScenarioFeed
from pipeline.broker import EmbeddedBroker, create_topics
from pipeline.errors import InterceptorError
from pipeline.kafka import KafkaConnection
from pipeline.settings import Settings
from pipeline.topics import (
    ACTION_ACKS,
    DEAD_LETTERS,
    FREEZE_ACTIONS,
    SUSPENSION_ACTIONS,
    VICTIM_REPORTS,
    VICTIM_WARNINGS,
    catalogue,
)
from pipeline.worker_process import settings_env, start_worker, stop_worker
from processors.takedowns import PLATFORM_DOMAINS
from schemas.fields import minor_unit_exponent

DEMO_SLAS = {
    "INTERCEPTOR_SLA_CRITICAL": "PT10S",
    "INTERCEPTOR_SLA_HIGH": "PT20S",
    "INTERCEPTOR_SLA_MEDIUM": "PT40S",
    "INTERCEPTOR_SLA_LOW": "PT60S",
}


@dataclass
class DemoTally:
    sent: dict[str, int] = field(default_factory=dict)
    report_sent_at: dict[str, float] = field(default_factory=dict)
    first_action_latency_s: dict[str, float] = field(default_factory=dict)
    latest: dict[str, dict[str, object]] = field(default_factory=dict)
    versions: int = 0
    dead_letters: int = 0
    suspensions: dict[str, dict[str, object]] = field(default_factory=dict)
    warnings: dict[str, dict[str, object]] = field(default_factory=dict)
    escalations: int = 0
    held_by_action: dict[str, tuple[str, Decimal]] = field(default_factory=dict)
    first_execution_s: dict[str, float] = field(default_factory=dict)

    def take_ack(self, ack: dict[str, object], sent_at: float) -> None:
        """What the institution desk answered: money now held, and when each report's first order was executed."""
        action = self.latest.get(str(ack["action_id"])) or self.suspensions.get(str(ack["action_id"]))
        if action is None or ack["status"] not in ("executed", "partial"):
            return
        if ack.get("amount_held") is not None:
            self.held_by_action[str(ack["action_id"])] = (str(action["currency"]), Decimal(str(ack["amount_held"])))
        for report_id in action["report_ids"]:  # type: ignore[attr-defined]
            sent = self.report_sent_at.get(report_id)
            if sent is not None and report_id not in self.first_execution_s:
                self.first_execution_s[report_id] = sent_at - sent

    def take_action(self, action: dict[str, object], seen_at: float) -> None:
        self.versions += 1
        if "hold_amount" in action:
            kept = self.latest.get(str(action["action_id"]))
            if kept is None or int(action["version"]) > int(kept["version"]):  # type: ignore[call-overload]
                self.latest[str(action["action_id"])] = action
        for report_id in action["report_ids"]:  # type: ignore[attr-defined]
            sent = self.report_sent_at.get(report_id)
            if sent is not None and report_id not in self.first_action_latency_s:
                self.first_action_latency_s[report_id] = seen_at - sent


def run_demo(settings: Settings, duration_s: float | None) -> None:
    with contextlib.ExitStack() as stack:
        bootstrap = settings.bootstrap_servers
        if not bootstrap:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            broker = stack.enter_context(EmbeddedBroker(port=0, log_path=settings.data_dir / "demo-broker.log"))
            bootstrap = broker.bootstrap
            settings = settings.with_overrides(replication_factor=1)  # one embedded broker holds one copy
            print(f"embedded Tansu broker on {bootstrap} (in memory)", flush=True)
        asyncio.run(_demo(settings, bootstrap, duration_s))


async def _demo(settings: Settings, bootstrap: str, duration_s: float | None) -> None:
    await create_topics(
        KafkaConnection.of(settings, bootstrap), catalogue(0), settings.topic_prefix, settings.replication_factor
    )
    seed = int(time.time())
    desk = InstitutionDesk(seed)
    settings = _register_desk_keys(settings, desk)
    worker = _start_worker(settings, bootstrap)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    tally = DemoTally()
    feed = ScenarioFeed(
        FeedSettings(seed=seed, cases_per_minute=20, report_delay_s=10, bad_event_every=500, telecom=True)
    )
    try:
        await _wait_until_ready(settings.data_dir / "demo-worker.log", worker)
        print("worker ready; feeding background bank traffic and scam cases (Ctrl-C to stop)\n", flush=True)
        started = time.monotonic()
        await _run_feed(settings, bootstrap, feed, desk, tally, stop, started, duration_s, worker)
    finally:
        stop_worker(worker)
    _print_summary(feed, tally, time.monotonic() - started)


async def _run_feed(
    settings: Settings,
    bootstrap: str,
    feed: ScenarioFeed,
    desk: InstitutionDesk,
    tally: DemoTally,
    stop: asyncio.Event,
    started: float,
    duration_s: float | None,
    worker: subprocess.Popen[bytes],
) -> None:
    kafka = KafkaConnection.of(settings, bootstrap)
    producer = kafka.producer(linger_ms=5)
    actions_topic, dead_topic = settings.topic(FREEZE_ACTIONS), settings.topic(DEAD_LETTERS)
    suspensions_topic, warnings_topic = settings.topic(SUSPENSION_ACTIONS), settings.topic(VICTIM_WARNINGS)
    watcher = kafka.consumer(
        actions_topic, suspensions_topic, warnings_topic, dead_topic,
        auto_offset_reset="latest", fetch_max_wait_ms=20,
    )  # fmt: skip
    await producer.start()
    await watcher.start()
    try:
        while not stop.is_set() and (duration_s is None or time.monotonic() - started < duration_s):
            if worker.poll() is not None:
                raise InterceptorError(f"the worker exited with code {worker.returncode}; see its log")
            now_ms = int(time.time() * 1000)
            for event in [*feed.events_until(now_ms), *desk.acks_until(now_ms)]:
                topic = settings.topic_prefix + event.topic
                await producer.send(topic, event.encode(), key=event.key)
                tally.sent[event.topic] = tally.sent.get(event.topic, 0) + 1
                if event.topic == VICTIM_REPORTS.name and isinstance(event.value, dict):
                    tally.report_sent_at[str(event.value["report_id"])] = time.time()
                if event.topic == ACTION_ACKS.name and isinstance(event.value, dict):
                    tally.take_ack(event.value, time.time())
            for tp, records in (await watcher.getmany(timeout_ms=50)).items():
                for record in records:
                    elapsed = time.monotonic() - started
                    if tp.topic == dead_topic:
                        tally.dead_letters += 1
                        continue
                    message = orjson.loads(record.value)
                    if tp.topic == warnings_topic:
                        tally.warnings[message["warning_id"]] = message
                        print(f"[{elapsed:7.1f}s] WARN   {message['msisdn']} at {message['operator']}: "
                              f"called by reported scammer {message['scammer_msisdn']}", flush=True)  # fmt: skip
                        continue
                    tally.escalations += 1 if message.get("escalation") else 0
                    desk.take(message, int(time.time() * 1000))
                    if tp.topic == suspensions_topic:
                        tally.suspensions[message["action_id"]] = message
                        tally.take_action(message, time.time())
                        print(f"[{elapsed:7.1f}s] SUSPEND {message['status']:<7} priority {message['priority']:>3}  "
                              f"{message['target_type']} {message['target']} at {message['addressee']}"
                              f"  v{message['version']}", flush=True)  # fmt: skip
                        continue
                    tally.take_action(message, time.time())
                    _print_action(message, elapsed)
        await producer.flush()
    finally:
        await watcher.stop()
        await producer.stop()


def _print_action(action: dict[str, object], elapsed_s: float) -> None:
    target = action["target"]
    assert isinstance(target, dict)
    where = f"{target['kind']}:{target['institution']}:{target['account']}"
    print(
        f"[{elapsed_s:7.1f}s] FREEZE {action['status']:<8} priority {action['priority']:>3}  hop {action['hop']}  "
        f"{where:<34} hold {action['hold_amount']:>12} {action['currency']}  "
        f"v{action['version']}  reports {','.join(action['report_ids'])}",  # type: ignore[arg-type]
        flush=True,
    )


def _print_summary(feed: ScenarioFeed, tally: DemoTally, elapsed_s: float) -> None:
    reported = [case for case in feed.cases if case.report_id in tally.report_sent_at]
    stolen = sum(case.stolen for case in reported)
    frozen = 0
    for action in tally.latest.values():
        if action["status"] == "active" and set(action["report_ids"]) & tally.report_sent_at.keys():  # type: ignore[call-overload]
            currency = str(action["currency"])
            frozen += int(Decimal(str(action["hold_amount"])).scaleb(minor_unit_exponent(currency)))
    latencies = sorted(tally.first_action_latency_s.values())
    print("\n── summary " + "─" * 60)
    print(f"ran for            {elapsed_s:.1f} s")
    by_topic = ", ".join(f"{topic}: {count}" for topic, count in sorted(tally.sent.items()))
    print(f"events in          {sum(tally.sent.values())} ({by_topic})")
    print(f"dead letters       {tally.dead_letters}")
    print(f"actions out        {tally.versions} versions, {len(tally.latest)} distinct freeze actions")
    if latencies:
        p50 = statistics.median(latencies)
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        print(f"report→action      p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms over {len(latencies)} reports")
    else:
        print("report→action      no report received an action yet (run longer)")
    share = f"{100 * frozen / stolen:.1f}%" if stolen else "n/a (no report sent yet)"
    print(f"stolen money under freeze orders  {share} of {len(reported)} reported cases")
    held: dict[str, Decimal] = {}
    for currency, amount in tally.held_by_action.values():
        held[currency] = held.get(currency, Decimal(0)) + amount
    held_text = ", ".join(f"{amount:,.2f} {currency}" for currency, amount in sorted(held.items())) or "none yet"
    print(f"money held         {held_text} (executed acks from institutions)")
    executions = sorted(tally.first_execution_s.values())
    if executions:
        print(f"report→executed    p50 {statistics.median(executions):.1f} s over {len(executions)} reports")
    else:
        print("report→executed    no executed ack yet (run longer)")
    print(f"suspensions        {len(tally.suspensions)} distinct, {tally.escalations} escalated versions seen")
    print(f"victim warnings    {len(tally.warnings)} numbers warned")


def _register_desk_keys(settings: Settings, desk: InstitutionDesk) -> Settings:
    """The simulated institutions sign their acks; the worker gets their public keys, as a war room registers them."""
    names = [i.code for i in THAI_INSTITUTIONS] + [*TELECOM_OPERATORS, *PLATFORM_DOMAINS.values()]
    path = settings.data_dir / "demo-institution-keys.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(desk.registry([*names, settings.default_addressee])))
    return settings.with_overrides(institution_keys_file=path)


def _start_worker(settings: Settings, bootstrap: str) -> subprocess.Popen[bytes]:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    # Demo time is compressed: SLAs of seconds, so escalations show within a short run.
    slas = {name: value for name, value in DEMO_SLAS.items() if name not in os.environ}
    return start_worker(
        settings.data_dir,
        settings.data_dir / "demo-worker.log",
        {**slas, **settings_env(settings, bootstrap)},
        metrics_port=settings.metrics_port,
    )


async def _wait_until_ready(log_path: Path, worker: subprocess.Popen[bytes], timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while b"recovered" not in log_path.read_bytes():
        if worker.poll() is not None:
            raise InterceptorError(f"the worker exited with code {worker.returncode}; see {log_path}")
        if time.monotonic() > deadline:
            raise InterceptorError(f"the worker was not ready within {timeout_s} s; see {log_path}")
        await asyncio.sleep(0.2)
