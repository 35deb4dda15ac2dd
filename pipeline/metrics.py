"""Every metric the worker exposes, named as the Kafka exporters name theirs.

Each worker owns its registry, so several can run in one process (tests) without clashes.
"""

from __future__ import annotations

import urllib.request

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.parser import text_string_to_metric_families

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600, 86400)
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]  # (sample name, its labels sorted) -> value
BATCH_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)


class Metrics:
    def __init__(self, consumer_group: str) -> None:
        self.consumer_group = consumer_group
        self.registry = CollectorRegistry()
        self.events_consumed = Counter(
            "interceptor_events_consumed_total", "Input messages consumed", ["topic"], registry=self.registry
        )
        self.dead_letters = Counter(
            "interceptor_dead_letters_total", "Input messages sent to dead-letters", ["topic", "reason"],
            registry=self.registry,
        )  # fmt: skip
        self.actions_emitted = Counter(
            "interceptor_actions_emitted_total", "Action versions emitted", ["kind", "band", "status"],
            registry=self.registry,
        )  # fmt: skip
        self.warnings_emitted = Counter(
            "interceptor_victim_warnings_total", "Victim warning versions emitted", registry=self.registry
        )
        self.report_to_first_execution = Histogram(
            "interceptor_report_to_first_executed_ack_seconds",
            "From a report reaching the broker to the first executed (or partial) ack of an action it caused",
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.acks = Counter("interceptor_acks_total", "Acks received", ["status"], registry=self.registry)
        self.escalations = Counter(
            "interceptor_escalations_total", "Actions re-issued after missing their SLA", ["kind", "band"],
            registry=self.registry,
        )  # fmt: skip
        self.money_held = Gauge(
            "interceptor_money_held", "Sum of amount_held acked by institutions (major units)",
            ["institution", "currency"], registry=self.registry,
        )  # fmt: skip
        self.open_actions = Gauge(
            "interceptor_open_actions", "Active actions not yet acknowledged", ["band"], registry=self.registry
        )
        self.report_to_first_action = Histogram(
            "interceptor_report_to_first_action_seconds",
            "From a report reaching the broker to the first freeze action it caused being delivered",
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.batch_seconds = Histogram(
            "interceptor_batch_processing_seconds", "Decode, trace, publish and commit of one batch",
            buckets=BATCH_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.batch_size = Histogram(
            "interceptor_batch_records", "Records per consumed batch",
            buckets=(1, 10, 100, 1_000, 5_000, 10_000, 20_000, 50_000), registry=self.registry,
        )  # fmt: skip
        self.consumer_lag = Gauge(
            "kafka_consumergroup_lag", "Messages behind the partition's high-water mark",
            ["consumergroup", "topic", "partition"], registry=self.registry,
        )  # fmt: skip
        self.indexed_transactions = Gauge(
            "interceptor_indexed_transactions", "Bank transactions held for tracing", registry=self.registry
        )
        self.recovery_seconds = Gauge(
            "interceptor_recovery_seconds",
            "How long the last start or takeover took to rebuild state before consuming",
            registry=self.registry,
        )
        self.standby_changelog_lag = Gauge(
            "interceptor_standby_changelog_lag",
            "Trail changelog messages a standby's store has not applied yet (what a takeover would read)",
            registry=self.registry,
        )
        self.live_freeze_actions = Gauge(
            "interceptor_live_freeze_actions", "Active freeze actions", registry=self.registry
        )
        self.expired = Counter(
            "interceptor_expired_total", "Entries forgotten past their retention", ["store"], registry=self.registry
        )

        self.circuit_open = Gauge(
            "interceptor_circuit_open",
            "1 while the circuit breaker holds back actions for an addressee (max_actions_per_institution reached)",
            ["institution"], registry=self.registry,
        )  # fmt: skip
        self.actions_held_back = Gauge(
            "interceptor_actions_held_back", "Action versions waiting for the circuit breaker's window",
            ["institution"], registry=self.registry,
        )  # fmt: skip
        self.release_decisions = Counter(
            "interceptor_release_decisions_total", "Release requests answered, by reason (granted or why refused)",
            ["reason"], registry=self.registry,
        )  # fmt: skip
        self.trail_partitions_owned = Gauge(
            "interceptor_trail_partitions_owned", "Trail partitions this worker owns (trail_partitions > 0)",
            registry=self.registry,
        )  # fmt: skip
        self.trail_adoptions = Counter(
            "interceptor_trail_adoptions", "Trail partitions this worker adopted: restored from the changelog and "
            "announced with a RESET (a partition assigned to it again through a rebalance is not adopted again)",
            registry=self.registry,
        )  # fmt: skip
        self.trail_changelog_restored = Counter(
            "interceptor_trail_changelog_restored_messages", "Changelog messages read adopting a trail partition "
            "(with a standby replica, only the tail since its last poll)", ["partition"], registry=self.registry,
        )  # fmt: skip
        self.trail_standby_partitions = Gauge(
            "interceptor_trail_standby_partitions", "Trail partitions other workers own that this one keeps a warm "
            "copy of (warm_standby); interceptor_standby_changelog_lag is what the copies miss", registry=self.registry,
        )  # fmt: skip
        self.trail_local_copies = Gauge(
            "interceptor_trail_local_copies", "Trail partitions this worker's disk holds a copy of: those it owns, "
            "those it keeps warm, and none else once its standby loop has dropped them", registry=self.registry,
        )  # fmt: skip
        self.trail_messages_sent = Counter(
            "interceptor_trail_messages_sent", "Trail messages sent through trail-messages to a partition another "
            "worker owns (or this one, before it may deliver in process): what spreading the trail costs",
            ["partition"], registry=self.registry,
        )  # fmt: skip
        self.trail_batch_seconds = Histogram(
            "interceptor_trail_batch_seconds", "Trace, send and commit of one batch of this worker's trail partitions",
            buckets=BATCH_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self._circuits: set[str] = set()

    def set_circuits(self, waiting: dict[str, int]) -> None:
        """Open circuits and how much waits behind them; a circuit that closed drops to 0."""
        for institution in self._circuits | waiting.keys():
            self.circuit_open.labels(institution).set(1 if waiting.get(institution) else 0)
            self.actions_held_back.labels(institution).set(waiting.get(institution, 0))
        self._circuits |= waiting.keys()

    def set_lag(self, topic: str, partition: int, lag: int, consumergroup: str | None = None) -> None:
        self.consumer_lag.labels(consumergroup or self.consumer_group, topic, str(partition)).set(lag)

    def serve(self, port: int) -> None:
        start_http_server(port, addr="0.0.0.0", registry=self.registry)  # noqa: S104 - scraped from outside


def scrape(port: int, host: str = "127.0.0.1") -> Samples:
    """What a worker process serves on its metrics port; empty while it does not serve yet (bench and tests)."""
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return {}
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
