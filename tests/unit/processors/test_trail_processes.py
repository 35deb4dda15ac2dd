"""The trail spread over processes as a consumer group spreads it over workers, held to the oracle.

Each trail partition's messages wait in a queue, as a topic partition keeps them, and cross it
through the wire codec. A process reads its partitions' queues from a position, checkpoints every
partition it owns at once (state and positions, as a worker commits a batch), hands partitions
over, and crashes: its partitions are adopted elsewhere from their last checkpoint and read again
from there, and the bank transfers it had taken since are delivered again. Whatever happens, once
every message is read, the holdings, and the view of whoever follows the holdings, are the oracle's.
"""

from __future__ import annotations

import copy
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.interception import Interception
from pipeline.trail_host import TrailHost, retrace_holdings
from pipeline.trail_messages import decode_holdings, decode_messages, encode_messages
from pipeline.trail_store import Change, RocksStores
from processors.freeze_orders import FreezeOrder
from processors.money_trail import OUT, Holding, HoldingTrace, MoneyTrail, TrailPartition
from processors.records import Report, Transfer
from processors.trace_reference import trace_reference
from processors.trail_view import TrailView
from tests.unit.processors.test_trace_properties import (
    NOW_MS,
    SETTINGS,
    TRACE,
    Run,
    Scenario,
    assert_matches_oracle,
    assert_versions_are_consistent,
    records_of,
    scenarios,
)

Event = Report | Transfer
RECHECK_MS = 10**9


@dataclass
class Checkpoint:
    position: int  # the next message of the partition's queue to read
    state: TrailPartition | None  # None: in the partition's changelog


class Cluster:
    def __init__(self, partitions: int, processes: int, rng: random.Random) -> None:
        self.rng = rng
        self.partitions = partitions
        self.queues: dict[int, list[object]] = {p: [] for p in range(partitions)}
        self.position = dict.fromkeys(range(partitions), 0)
        self.view = TrailView(TRACE, partitions)  # the case role's: sends reports' claims, follows the holdings
        self.crashes = self.handovers = 0
        self.case: Interception | None = None  # when set, reports reach the trail through the real interception step
        self.published: list[FreezeOrder] = []
        self.processes = [
            self.new_process(n, [p for p in range(partitions) if p % processes == n]) for n in range(processes)
        ]
        self.uncommitted: list[list[Transfer]] = [[] for _ in range(processes)]  # taken since its checkpoint
        self.checkpoints: dict[int, Checkpoint] = {}
        for n in range(processes):
            self.checkpoint(n)

    def new_process(self, n: int, owned: list[int]) -> MoneyTrail:
        return MoneyTrail(TRACE, self.partitions, owned=owned)

    def owner(self, partition: int) -> int:
        return next(n for n, process in enumerate(self.processes) if partition in process.accounts)

    def send(self, trail: MoneyTrail | TrailView) -> None:
        for partition, messages in trail.take_outbox().items():
            self.queues[partition].extend(decode_messages(encode_messages(messages)))  # type: ignore[arg-type]

    def settle(self, n: int) -> None:
        """The end of a batch: re-trace, publish the changed holdings, send the messages."""
        trail = self.processes[n]
        for raw in retrace_holdings(trail).values():
            self.view.receive_holdings(*decode_holdings(raw))
        self.send(trail)
        self.catch_up(n)

    def catch_up(self, n: int) -> None:
        """A process's partitions whose queues it has read to the end take messages in process from now on."""
        for partition in self.processes[n].accounts:
            if self.position[partition] == len(self.queues[partition]):
                self.processes[n].deliver_locally(partition)

    def take(self, event: Event) -> None:
        if isinstance(event, Report):
            if self.case is None:
                self.view.add_report(event)
            else:
                self.published.extend(self.case.process(records_of([event]), NOW_MS).orders)
            self.send(self.view)
        else:  # whichever process reads the bank feed's partition that carries it
            n = self.rng.randrange(len(self.processes))
            self.processes[n].add_transaction(event)
            self.uncommitted[n].append(event)
            self.send(self.processes[n])

    def read(self, partition: int, most: int) -> None:
        n = self.owner(partition)
        start = self.position[partition]
        messages = self.queues[partition][start : start + most]
        self.position[partition] = start + len(messages)
        self.processes[n].receive(partition, messages)  # type: ignore[arg-type]
        self.settle(n)

    def checkpoint(self, n: int) -> None:
        """Commit a process's batch: every partition it owns, with the position it read to, at once."""
        trail = self.processes[n]
        for partition in trail.accounts:
            state = copy.deepcopy(trail.partition_state(partition))
            self.checkpoints[partition] = Checkpoint(self.position[partition], state)
        self.uncommitted[n] = []

    def release(self, n: int, partition: int) -> TrailPartition | None:
        return self.processes[n].release(partition)

    def move(self, partition: int, state: TrailPartition | None, to: int) -> None:
        """Hand a partition over, with what it knew when its owner let it go."""
        self.processes[to].adopt(partition, state)

    def restore(self, partition: int, to: int) -> None:
        """After a crash: the partition as its last checkpoint left it."""
        self.processes[to].adopt(partition, copy.deepcopy(self.checkpoints[partition].state))

    def restart(self, n: int) -> None:
        self.processes[n] = self.new_process(n, [])

    def hand_over(self, n: int, to: int) -> None:
        self.settle(n)
        self.checkpoint(n)
        partition = self.rng.choice(sorted(self.processes[n].accounts))
        self.move(partition, self.release(n, partition), to)
        self.settle(to)
        self.handovers += 1

    def crash(self, n: int) -> list[Transfer]:
        """Kill a process: its partitions go back to their checkpoints and to whoever takes them (itself, restarted,
        among them). Returns the bank transfers it had taken since its checkpoint: they are delivered again."""
        lost = sorted(self.processes[n].accounts)
        redelivered, self.uncommitted[n] = self.uncommitted[n], []
        self.restart(n)
        for partition in lost:
            self.position[partition] = self.checkpoints[partition].position
            self.restore(partition, self.rng.randrange(len(self.processes)))
        for to in range(len(self.processes)):
            self.settle(to)
        self.crashes += 1
        return redelivered

    def unread(self) -> list[int]:
        return [p for p, queue in self.queues.items() if self.position[p] < len(queue)]

    def drain(self) -> None:
        while unread := self.unread():
            for partition in unread:
                self.read(partition, len(self.queues[partition]))

    def holdings(self) -> dict[Holding, HoldingTrace]:
        return {holding: trace for trail in self.processes for holding, trace in trail.holdings().items()}


class RocksCluster(Cluster):
    """The same processes as workers on their own disks, each a ``TrailHost``. Every batch is closed, sent and
    committed, as the worker does: its rows go to each partition's changelog, then to the local store; a crash
    may strike between sending and committing, or between committing and writing the local store. A process
    adopts a partition as the worker does: from the changelog's tail after its local copy (a crashed process
    restarts on its own disk), or from all of it."""

    def __init__(self, partitions: int, processes: int, rng: random.Random, root: Path) -> None:
        self.root = root
        self.changelog: dict[int, list[Change]] = {p: [] for p in range(partitions)}
        self.changelog_ends: list[dict[int, int]] = [{} for _ in range(processes)]  # sent, not flushed
        self.hosts = [self.new_host(n, partitions) for n in range(processes)]
        super().__init__(partitions, processes, rng)

    def new_host(self, n: int, partitions: int) -> TrailHost:
        return TrailHost(TRACE, partitions, RocksStores(self.root / str(n), RECHECK_MS, keep_traced=True))

    def new_process(self, n: int, owned: list[int]) -> MoneyTrail:
        for partition in owned:
            self.adopt(n, partition)
        return self.hosts[n].trail

    def send(self, trail: MoneyTrail | TrailView) -> None:
        """The case role's claims go out at once; a worker's trail messages go out with its batch (``close_and_send``)
        and no sooner, as ``TrailHost.close_batch`` sends them: the host must count them to tell when a partition of
        its own has read everything sent to it."""
        if isinstance(trail, TrailView):
            super().send(trail)

    def adopt(self, n: int, partition: int) -> None:
        """As the worker adopts: from the changelog's tail after the local copy (a restart, or a partition owned here
        before), or all of it; then where its partitions' queues end, and a look at whether it has read them to
        their end already (it has not sent the adoption's RESETs yet, so it may not take messages in process)."""
        host, changelog = self.hosts[n], self.changelog[partition]
        local = host.changelog_offset(partition)
        if local is not None and local <= len(changelog):
            host.adopt(partition, changelog[local:], tail=True, changelog_end=len(changelog))
        else:
            host.adopt(partition, changelog, changelog_end=len(changelog))
        host.queue_ends({p: len(self.queues[p]) for p in host.owned})
        self.catch_up(n)

    def settle(self, n: int) -> None:
        """A worker's batch: closed, sent (its rows to the changelogs too), committed, flushed (nothing reads the
        store in between)."""
        self.close_and_send(n)
        self.commit(n)

    def close_and_send(self, n: int) -> None:
        batch = self.hosts[n].close_batch()
        for raw in batch.holdings.values():
            self.view.receive_holdings(*decode_holdings(raw))
        for partition, records in batch.messages.items():
            for raw in records:
                self.queues[partition].extend(decode_messages(raw))
            self.hosts[n].sent(partition, len(self.queues[partition]))
        for partition, rows in batch.changelog.items():
            self.changelog[partition].extend(rows)
            self.changelog_ends[n][partition] = len(self.changelog[partition])
        self.catch_up(n)

    def commit(self, n: int, flush: bool = True) -> None:
        if flush:
            self.hosts[n].flush(self.changelog_ends[n])
        self.changelog_ends[n] = {}
        for partition in self.hosts[n].owned:
            self.checkpoints[partition] = Checkpoint(self.position[partition], None)
        self.uncommitted[n] = []

    def catch_up(self, n: int) -> None:
        for partition in self.hosts[n].waiting():
            self.hosts[n].read_to(partition, self.position[partition])

    def checkpoint(self, n: int) -> None:
        self.settle(n)

    def release(self, n: int, partition: int) -> None:
        self.hosts[n].release(partition)

    def move(self, partition: int, state: TrailPartition | None, to: int) -> None:
        self.adopt(to, partition)

    def restore(self, partition: int, to: int) -> None:
        self.adopt(to, partition)

    def restart(self, n: int) -> None:
        self.hosts[n].stores.close()  # what it closed but did not flush never reached the disk
        self.changelog_ends[n] = {}
        self.hosts[n] = self.new_host(n, self.partitions)
        self.processes[n] = self.hosts[n].trail

    def crash(self, n: int) -> list[Transfer]:
        moment = self.rng.random()
        if moment < 2 / 3:
            self.close_and_send(n)  # and killed before the commit
            if moment < 1 / 3:
                self.commit(n, flush=False)  # or after it, before the local store took the batch
        return super().crash(n)

    def close(self) -> None:
        for host in self.hosts:
            host.stores.close()


# A scenario, 1 to 5 trail partitions, 1 to 3 processes, and the randomness of who does what when.
clusters = given(
    scenarios(),
    st.integers(min_value=1, max_value=5),
    st.integers(min_value=1, max_value=3),
    st.randoms(use_true_random=False),
)


def assert_holdings_are_the_oracles(cluster: Cluster, scenario: Scenario) -> None:
    expected = trace_reference(scenario.final_reports, scenario.feed, TRACE)
    assert cluster.holdings() == expected
    assert cluster.view.holdings() == expected


def _arrivals(scenario: Scenario, rng: random.Random) -> list[Event]:
    """Reports' revisions in order among the feed, at random places."""
    events: list[Event] = list(scenario.feed)
    rng.shuffle(events)
    for report in scenario.reports:
        events.insert(rng.randint(0, len(events)), report)
    reports = iter(scenario.reports)
    return [next(reports) if isinstance(event, Report) else event for event in events]


def run(
    scenario: Scenario,
    partitions: int,
    processes: int,
    rng: random.Random,
    crashes: bool,
    case: bool = False,
    disks: Path | None = None,
) -> Cluster:
    cluster = Cluster(partitions, processes, rng) if disks is None else RocksCluster(partitions, processes, rng, disks)
    if case:
        cluster.case = Interception(SETTINGS, trail=cluster.view)
    pending = _arrivals(scenario, rng)
    while pending or cluster.unread():
        roll = rng.random()
        if pending and roll < 0.4:
            cluster.take(pending.pop(0))
        elif cluster.case is not None and 0.4 <= roll < 0.45:  # the case role's batch: what the holdings decide now
            cluster.published.extend(cluster.case.process([], NOW_MS).orders)
        elif (unread := cluster.unread()) and roll < 0.75:
            cluster.read(rng.choice(unread), rng.randint(1, 4))
        elif roll < 0.85:
            cluster.settle(n := rng.randrange(processes))
            cluster.checkpoint(n)
        elif roll < 0.93 and processes > 1:
            n = rng.choice([n for n, trail in enumerate(cluster.processes) if trail.accounts] or [0])
            if cluster.processes[n].accounts:
                cluster.hand_over(n, rng.choice([m for m in range(processes) if m != n]))
        elif crashes:
            pending[:0] = cluster.crash(rng.randrange(processes))
    for n in range(processes):
        cluster.settle(n)
    cluster.drain()
    if cluster.case is not None:
        cluster.published.extend(cluster.case.process([], NOW_MS).orders)
    return cluster


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@clusters
def test_processes_exchanging_messages_through_the_wire_match_the_oracle(
    scenario: Scenario, partitions: int, processes: int, rng: random.Random
) -> None:
    cluster = run(scenario, partitions, processes, rng, crashes=False)
    assert_holdings_are_the_oracles(cluster, scenario)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@clusters
def test_crashed_processes_replaying_from_their_checkpoints_match_the_oracle(
    scenario: Scenario, partitions: int, processes: int, rng: random.Random
) -> None:
    cluster = run(scenario, partitions, processes, rng, crashes=True)
    assert_holdings_are_the_oracles(cluster, scenario)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@clusters
def test_processes_on_their_own_disks_moving_partitions_through_changelogs_match_the_oracle(
    scenario: Scenario, partitions: int, processes: int, rng: random.Random
) -> None:
    with tempfile.TemporaryDirectory() as disks:
        cluster = run(scenario, partitions, processes, rng, crashes=True, disks=Path(disks))
        try:
            assert_holdings_are_the_oracles(cluster, scenario)
        finally:
            cluster.close()  # type: ignore[attr-defined]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@clusters
def test_the_case_role_following_crashing_trail_processes_issues_the_oracles_freezes(
    scenario: Scenario, partitions: int, processes: int, rng: random.Random
) -> None:
    cluster = run(scenario, partitions, processes, rng, crashes=True, case=True)
    assert_matches_oracle(Run(cluster.case, cluster.published), scenario)  # type: ignore[arg-type]
    assert_versions_are_consistent(cluster.published)


def test_an_adopted_partition_takes_back_what_its_crashed_owner_published_and_sent() -> None:
    """The owner of the victim's and the mule's partitions published the mule's holding and sent the mule's
    outflow on to a collector owned elsewhere, then crashed with its checkpoint from before the report. The
    report was corrected meanwhile, and the new owner reads report and correction in one go, so its replay
    never reaches the mule: the reset must take back the holding and the content the crashed owner sent."""
    partitions = 4
    trail = MoneyTrail(TRACE, partitions)
    crashed_side = [a for a in (("bank", "KBANK", f"acct-{n}") for n in range(40)) if trail.partition_of_account(a) % 2]
    other_side = [
        a for a in (("bank", "KBANK", f"acct-{n}") for n in range(40)) if trail.partition_of_account(a) % 2 == 0
    ]
    victim, mule, collector = crashed_side[0], crashed_side[1], other_side[0]
    paid = Transfer("pay", victim, mule, 10_000, "THB", 1_000)
    onward = Transfer("onward", mule, collector, 10_000, "THB", 2_000)
    first = Report("r0", 3_000, 0, "v", "TH", "investment", (paid,))
    corrected = Report("r0", 3_000, 0, "v", "TH", "investment", (), revision=2)
    cluster = Cluster(partitions, 2, random.Random(0))  # process 1 owns the odd partitions, process 0 the even
    for transfer in (paid, onward):
        cluster.take(transfer)
    cluster.drain()
    cluster.checkpoint(1)
    cluster.take(first)
    cluster.drain()
    assert cluster.view.holding((mule, "THB")) is not None and cluster.view.holding((collector, "THB")) is not None
    cluster.take(corrected)
    for partition in range(0, partitions, 2):  # the resolvers owned by process 0 tell the mule's side
        cluster.read(partition, 100)
    cluster.crash(1)
    cluster.drain()
    assert trace_reference([corrected], [paid, onward], TRACE) == {}
    assert cluster.holdings() == {}
    assert cluster.view.holdings() == {}


def test_a_partition_told_a_transfer_is_out_of_another_account_forgets_the_account_named_before() -> None:
    """Found by the crash property above (3 processes, 5 partitions). Before its crash, the resolver of ``shared``
    told the mules' partition that the feed's transfer out of mule 0 was named by a report. Back at a checkpoint from
    before the feed had it, its replay told the report's own copy, out of mule 1 (same partition), took it back when
    the correction withdrew it, and told the feed's record again, unnamed: a transfer has one record, so the first
    message already means mule 0's transfer is no longer the named one, and mule 4 must hold nothing."""
    mule_0, mule_1, mule_4, collector = (("bank", "KBANK", f"mule-{n}") for n in (0, 1, 4, 3))
    fed = (60_000, mule_0, mule_4, 1_000, "THB", "shared", True)
    copy_of_report = (50_000, mule_1, collector, 2_000, "USD", "shared", True)
    trail = MoneyTrail(TRACE)  # one process owning every partition: the replayed messages are all it gets
    trail.receive(0, [(OUT, mule_0, "shared", fed, frozenset({"r1"}), False)])
    assert trail.retrace()[(mule_4, "THB")] is not None

    trail.receive(0, [
        (OUT, mule_1, "shared", copy_of_report, frozenset({"r1"}), False),
        (OUT, mule_1, "shared", None, frozenset(), False),
        (OUT, mule_0, "shared", (*fed[:6], False), frozenset(), True),
    ])  # fmt: skip

    assert trail.retrace() == {(mule_4, "THB"): None}
    assert trail.holdings() == {}


def test_the_runs_hand_over_and_crash_as_they_claim() -> None:
    """Guard against a harness that quietly tests only the easy world: runs do move and lose partitions."""
    crashes = handovers = 0

    @settings(max_examples=60, deadline=None, database=None)
    @given(scenarios(), st.randoms(use_true_random=False))
    def look(scenario: Scenario, rng: random.Random) -> None:
        nonlocal crashes, handovers
        cluster = run(scenario, 3, 2, rng, crashes=True)
        crashes += cluster.crashes
        handovers += cluster.handovers

    look()
    assert crashes >= 30 and handovers >= 30, (crashes, handovers)
