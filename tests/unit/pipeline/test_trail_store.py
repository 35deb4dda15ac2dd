"""The trail on RocksDB, restarted the way the worker restarts it, is held to the reference oracle.

A run checkpoints after every batch (stage, then flush); a crash may lose the last flush.
A restart reopens the store (or rebuilds a wiped one from the changelog rows), restores
the published actions, replays reports in full but bank transfers only from where the
store left off, and rebuilds. The final actions must equal the oracle's, with no version
published twice with different content.
"""

from __future__ import annotations

import random
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.interception import BatchResult, Interception
from pipeline.topics import BANK_TRANSACTIONS
from pipeline.trail_store import Change, RocksStores, partition_of_row
from processors.money_trail import MoneyTrail, TraceSettings
from processors.records import AccountKey, Report, Transfer
from tests.unit.processors.test_money_trail import account, report, transfer
from tests.unit.processors.test_trace_properties import (
    NOW_MS,
    SETTINGS,
    TRACE,
    Record,
    Run,
    Scenario,
    assert_matches_oracle,
    assert_versions_are_consistent,
    events_of,
    records_of,
    scenarios,
)

BANK = SETTINGS.topic(BANK_TRANSACTIONS)
RECHECK_MS = 3_600_000


@contextmanager
def store_directory() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="trail-store-"))
    try:
        yield path / "store"
    finally:
        shutil.rmtree(path, ignore_errors=True)


class DurableRun(Run):
    """The worker's checkpoint and recovery, without a broker: the changelog is a list of rows."""

    def __init__(self, path: Path, partitions: int) -> None:
        self.path, self.partitions = path, partitions
        self.changelog: list[list[Change]] = []
        self.stores = RocksStores(path, RECHECK_MS)
        super().__init__(self._interception())

    def _interception(self) -> Interception:
        step = Interception(SETTINGS)
        step.trail = MoneyTrail(TRACE, self.partitions, stores=self.stores)
        return step

    def batch(self, records: Sequence[Record], end: int, crash: str = "none") -> None:
        """One batch in the worker's order: publish, log to the changelog, commit, write the store.

        ``crash``: ``after_commit`` (the store is not written), ``after_log`` (nor are the offsets
        committed: the batch is redelivered) or ``after_publish`` (nor is the changelog written).
        """
        self.published.extend(self.interception.process(records, NOW_MS).orders)
        rows = list(self.stores.stage({(BANK, 0): end}))
        if crash != "after_publish":
            self.changelog.append(rows)
        if crash == "none":
            self.stores.flush(len(self.changelog))
        else:
            self.stores._staged = []

    def restart(self, committed: Sequence[Record], wipe: bool, changelog_tail_lost: bool) -> None:
        flushed = self.stores.changelog_offset()
        self.stores.close()
        if changelog_tail_lost:  # what the changelog lacks, the input topics' tail makes up
            del self.changelog[0 if wipe else flushed :]
        if wipe:
            RocksStores.wipe(self.path)
        self.stores = RocksStores(self.path, RECHECK_MS)
        for offset in range(self.stores.changelog_offset(), len(self.changelog)):  # catch up with the changelog
            self.stores.apply(self.changelog[offset])
            self.stores.mark_changelog(offset + 1)
        fresh = self._interception()
        for order in self.published:
            fresh.restore(order)
        stored = self.stores.offsets().get((BANK, 0), 0)
        fresh.ingest([r for r in committed if r.topic != BANK or r.offset >= stored], BatchResult())
        fresh.rebuild(NOW_MS)
        self.interception = fresh


def run_durably(
    records: Sequence[Record],
    cuts: list[int],
    restart_at: int,
    partitions: int,
    crash: str,
    wipe: bool,
    changelog_tail_lost: bool = False,
) -> DurableRun:
    with store_directory() as path:
        run = DurableRun(path, partitions)
        start = 0
        for end in sorted({*cuts, restart_at, len(records)}):
            if end != restart_at:
                if records[start:end]:
                    run.batch(records[start:end], end)
                start = end
                continue
            if records[start:end]:
                run.batch(records[start:end], end, crash)
            if crash in ("after_log", "after_publish"):  # not committed: redelivered after the restart
                run.restart(records[:start], wipe, changelog_tail_lost)
                if records[start:end]:
                    run.batch(records[start:end], end)
            else:
                run.restart(records[:end], wipe, changelog_tail_lost)
            start = end
        run.stores.close()
        return run


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.randoms(use_true_random=False), st.data())
def test_a_durable_trail_restarted_from_its_store_matches_the_oracle(
    scenario: Scenario, rng: random.Random, data: st.DataObject
) -> None:
    events = events_of(scenario)
    rng.shuffle(events)
    records = records_of(events)
    cuts = sorted(rng.sample(range(len(records) + 1), min(4, len(records) + 1)))
    run = run_durably(
        records,
        cuts,
        restart_at=rng.randrange(len(records) + 1),
        partitions=data.draw(st.sampled_from([1, 3])),
        crash=data.draw(st.sampled_from(["none", "after_commit", "after_log", "after_publish"])),
        wipe=data.draw(st.booleans()),
        changelog_tail_lost=data.draw(st.booleans()),
    )
    assert_matches_oracle(run, scenario)
    assert_versions_are_consistent(run.published)


def test_a_trail_reopened_on_its_store_traces_a_new_report_as_the_memory_trail_does() -> None:
    chain = [transfer(f"t{i}", f"a{i % 50}", f"a{(i + 1) % 50}", 100 + i, at_ms=i * 10) for i in range(1500)]
    late_report = report("r1", transfer("v1", "victim", "a0", 5_000, at_ms=-1))
    in_memory = MoneyTrail(TRACE)
    for t in chain:
        in_memory.add_transaction(t)
    in_memory.add_report(late_report)
    with store_directory() as path:
        stores = RocksStores(path, RECHECK_MS)
        before = MoneyTrail(TRACE, stores=stores)
        for t in chain:
            before.add_transaction(t)
        before.retrace()
        stores.stage({(BANK, 0): 1500})
        stores.flush(1)
        stores.close()

        stores = RocksStores(path, RECHECK_MS)
        after = MoneyTrail(TRACE, stores=stores)  # a restart: nothing replayed
        assert stores.offsets() == {(BANK, 0): 1500}
        assert len(after) == 1500
        assert after.add_transaction(chain[7]) is False  # a redelivery is recognised from disk
        after.add_report(late_report)
        assert after.retrace() == in_memory.retrace() != {}
        stores.close()


def test_eviction_forgets_untraced_transfers_and_logs_a_traced_accounts_evidence_again() -> None:
    trace = TraceSettings(trace_window_ms=1_000, max_hops=4, history_retention_ms=10_000)
    events = [
        report("r1", transfer("paid", "victim", "mule", 1_000, at_ms=0)),
        transfer("onward", "mule", "m2", 800, at_ms=5),
        transfer("background", "x", "y", 5, at_ms=1),
        transfer("late", "p", "q", 5, at_ms=50_000),
    ]
    in_memory = MoneyTrail(trace)
    with store_directory() as path:
        stores = RocksStores(path, RECHECK_MS)
        durable = MoneyTrail(trace, stores=stores)
        for checkpoint, arrived in enumerate((events[:3], events[3:]), start=1):
            for trail in (in_memory, durable):
                for event in arrived:
                    trail.add_report(event) if isinstance(event, Report) else trail.add_transaction(event)
                trail.retrace()
            stores.stage({})
            stores.flush(checkpoint)
        assert durable.evict() == in_memory.evict() == 2  # the unreported feed records before the cutoff
        rows = {key: value for key, value in stores.stage({}) if key[:1] in b"FOI"}
        stores.flush(3)
        live = {key for key, value in rows.items() if value is not None}
        assert any(key.startswith(b"O") and key.endswith(b"onward") for key in live)  # evidence, logged again
        assert not any(b"background" in key for key in live)
        assert any(key.startswith(b"O") and key.endswith(b"background") for key in rows)  # deleted
        assert durable.add_transaction(events[2]) is False  # older than the evicted history: not indexed again
        in_memory.add_transaction(transfer("onward-2", "m2", "m3", 300, at_ms=50_001))
        durable.add_transaction(transfer("onward-2", "m2", "m3", 300, at_ms=50_001))
        assert durable.retrace() == in_memory.retrace()
        assert durable.holdings() == in_memory.holdings()
        stores.close()


def test_a_checkpoint_of_a_full_batch_goes_out_in_messages_under_the_size_limit() -> None:
    from pipeline.changelog import chunks

    limit = SETTINGS.max_action_bytes
    batch = [
        transfer(f"bulk-{i:08d}", f"acct-{i % 5_000}", f"acct-{(i * 7) % 5_000}", 100, at_ms=i) for i in range(20_000)
    ]
    with store_directory() as path:
        stores = RocksStores(path, RECHECK_MS)
        trail = MoneyTrail(TRACE, stores=stores)
        for t in batch:
            trail.add_transaction(t)
        rows = stores.stage({(BANK, 0): len(batch)})
        messages = chunks(rows, limit)
        assert len(messages) > 1
        assert max(len(message) for message in messages) <= limit
        restored = RocksStores(path / "restored", RECHECK_MS)  # the changelog alone rebuilds the store
        for message in messages:
            restored.apply(msgspec.msgpack.decode(message, type=list[tuple[bytes, bytes | None]]))
        assert len(MoneyTrail(TRACE, stores=restored)) == len(batch)
        assert restored.offsets() == {(BANK, 0): len(batch)}
        restored.close()
        stores.close()


def test_a_store_restored_from_its_changelog_never_reuses_an_index_row_key() -> None:
    with store_directory() as path:
        stores = RocksStores(path, RECHECK_MS)
        trail = MoneyTrail(TRACE, stores=stores)
        changelog = []
        for n in range(3):
            trail.add_transaction(transfer(f"t{n}", "a", "b", 100, at_ms=n))
            changelog.append(list(stores.stage({(BANK, 0): n + 1})))
            stores.flush(n + 1)
        logged = {key for rows in changelog for key, value in rows if key[:1] in b"fo" and value is not None}
        stores.close()

        restored = RocksStores(path / "restored", RECHECK_MS)
        for rows in changelog:
            restored.apply(rows)
        trail = MoneyTrail(TRACE, stores=restored)
        trail.add_transaction(transfer("t-new", "a", "b", 100, at_ms=0))  # the same ``at`` as the first rows
        new = {key for key, value in restored.stage({(BANK, 0): 4}) if key[:1] in b"fo" and value is not None}
        assert new and not new & logged
        restored.close()


def test_money_reaching_a_hub_reads_enough_of_its_history_to_call_it_one_not_all_of_it() -> None:
    """An exchange's account holds millions of transfers: a report reaching it must not read them all."""
    trace = TraceSettings(hub_counterparties=50)
    hub = ("bank", "BTKX", "client-funds")
    with store_directory() as path:
        stores = RocksStores(path, RECHECK_MS)
        trail = MoneyTrail(trace, stores=stores)
        for n in range(5_000):
            trail.add_transaction(replace_target(transfer(f"d{n}", f"customer-{n}", "x", 100, 1_000 + n), hub))
        trail.retrace()
        stores.stage({})
        stores.flush(None)  # its history on disk, as after any checkpoint
        paid = transfer("pay", "victim", "mule", 10_000, 10_000)
        trail.add_transaction(paid)
        trail.add_transaction(replace_target(transfer("in", "mule", "x", 9_000, 10_500), hub))
        read = 0
        scan = stores.scan

        def counted(prefix: bytes, stop: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
            nonlocal read
            for row in scan(prefix, stop):
                read += 1
                yield row

        stores.scan = counted  # type: ignore[method-assign]
        trail.add_report(report("R1", paid))
        holding = trail.retrace()[(hub, "THB")]

        assert holding is not None and holding.hub_reason is not None and holding.received == 9_000
        assert read < 500  # of its 5,000 transfers in
        stores.close()


def replace_target(sent: Transfer, target: AccountKey) -> Transfer:
    return Transfer(sent.txn_id, sent.source, target, sent.amount, sent.currency, sent.at_ms)


def test_every_row_of_a_traced_trail_belongs_to_a_partition_and_dropping_one_leaves_the_rest() -> None:
    """What lets a partition follow its owner to another worker: its rows, and only its rows, can be told apart."""
    with store_directory() as path:
        stores = RocksStores(path, RECHECK_MS, keep_traced=True)
        trail = MoneyTrail(TRACE, 4, stores=stores)
        for i in range(40):
            trail.add_transaction(transfer(f"t{i}", f"a{i % 7}", f"a{(i + 3) % 7}", 100, at_ms=i * 10))
        trail.add_report(report("r1", transfer("v1", "victim", "a0", 5_000, at_ms=-1)))
        assert trail.retrace()
        rows = stores.stage({(BANK, 0): 41})
        stores.flush(None)
        assert {key[:9] for key, _ in rows if partition_of_row(key) is None} <= {b"Moffsets"} | {
            key[:9] for key, _ in rows if key[:1] == b"A"
        }  # only the input offsets and the accounts seen belong to the whole store
        kinds = {key[:1] for key, value in rows if value is not None and partition_of_row(key) is not None}
        assert {b"C", b"T", b"N", b"W", b"F", b"O", b"I"} <= kinds  # the traced state is there, tagged

        def rows_by_partition() -> dict[int | None, set[bytes]]:
            found: dict[int | None, set[bytes]] = {}
            for key, _ in stores.scan(b""):
                found.setdefault(partition_of_row(key), set()).add(key)
            return found

        before = rows_by_partition()
        dropped = trail.partition_of_account(account("a0"))
        stores.drop_partition(dropped)
        after = rows_by_partition()
        assert before[dropped] and dropped not in after
        assert {p: keys for p, keys in before.items() if p != dropped} == after
        stores.close()
