"""The trail's wire: what crosses between workers comes back equal to what was sent, and bad bytes are refused."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import msgspec
import orjson
import pytest

from pipeline.interception import Interception
from pipeline.settings import Settings
from pipeline.topics import TRAIL_HOLDINGS, VICTIM_REPORTS
from pipeline.trail_host import TrailHost
from pipeline.trail_messages import (
    BadTrailMessage,
    decode_holdings,
    decode_messages,
    encode_holdings,
    encode_messages,
    encode_records,
)
from pipeline.trail_store import RocksStores
from processors.money_trail import CLAIM, FEED, FLOW, IN, OUT, RESET, Message, MoneyTrail, partition_of
from processors.records import Transfer
from processors.trail_view import TrailView
from tests.unit.processors.test_money_trail import account, report, transfer
from tests.unit.processors.test_trace_properties import TRACE

NOW_MS = 1_795_500_000_000


def test_every_kind_of_message_comes_back_equal_to_what_was_sent() -> None:
    victim, mule, next_mule = account("victim"), account("m0"), account("m1")
    paid = (500, victim, mule, 1_000, "THB", "pay", False)
    step = ("pay", 0, victim, mule, 500, "THB", 1_000)
    sent: list[Message] = [
        (FEED, "pay", paid),
        (CLAIM, "r1", "pay", paid),
        (CLAIM, "r1", "pay", None),
        (OUT, victim, "pay", (*paid[:6], True), frozenset({"r1", "r2"}), False),
        (IN, mule, "pay", None, frozenset(), False),
        (IN, mule, "t1", (900, mule, next_mule, 700, "THB", "t1", False), frozenset(), True),
        (
            FLOW,
            next_mule,
            ("t1", mule),
            ((700, frozenset({"r1"}), (step, ("t1", 1, mule, next_mule, 900, "THB", 700))),),
        ),
        (FLOW, next_mule, ("t1", mule), None),
        (RESET, 2),
    ]
    assert decode_messages(encode_messages(sent)) == sent


def test_messages_a_trail_sends_to_other_processes_come_back_equal() -> None:
    trail = MoneyTrail(TRACE, 3, owned=[0])  # most of them are for partitions owned elsewhere
    for n in range(6):
        trail.add_transaction(transfer(f"t{n}", f"m{n}", f"m{n + 1}", 1_000 - n, at_ms=1_000 * (n + 1)))
    trail.add_report(report("r1", transfer("pay", "victim", "m0", 1_000, at_ms=500)))
    trail.adopt(1)
    sent = trail.take_outbox()
    assert sum(len(messages) for messages in sent.values()) == 6 + 1 + 3  # the feed, the claim, the resets
    for messages in sent.values():
        assert decode_messages(encode_messages(messages)) == messages


def test_holdings_come_back_with_their_evidence() -> None:
    trail = MoneyTrail(TRACE)
    for n in range(3):
        trail.add_transaction(transfer(f"t{n}", f"m{n}", f"m{n + 1}", 1_000, at_ms=1_000 * (n + 1)))
    trail.add_report(report("r1", transfer("pay", "victim", "m0", 1_000, at_ms=500)))
    changes = list(trail.retrace().items())
    assert changes and all(trace is not None and trace.trail and trace.digest for _, trace in changes)
    gone = (account("elsewhere"), "THB")
    assert decode_holdings(encode_holdings(2, True, [*changes, (gone, None)])) == (
        2,
        True,
        [*changes, (gone, None)],
        [],
    )


def test_holdings_carry_the_accounts_seen_and_read_as_none_seen_when_written_before_they_did() -> None:
    seen = [account("m0"), account("m1")]
    assert decode_holdings(encode_holdings(1, False, [], seen)).accounts == seen
    older = msgspec.msgpack.encode((1, False, []))  # a trail-holdings message of a worker from before
    assert decode_holdings(older) == (1, False, [], [])


@pytest.mark.parametrize(
    "raw",
    [
        b"\x00garbage",
        msgspec.msgpack.encode([("shout", 1)]),  # a kind from a newer version
        msgspec.msgpack.encode([(FEED, "t1", "not a record")]),
    ],
)
def test_a_message_this_worker_cannot_read_is_refused_with_the_reason(raw: bytes) -> None:
    with pytest.raises(BadTrailMessage):
        decode_messages(raw)
    with pytest.raises(BadTrailMessage):
        decode_holdings(raw)


def test_a_trail_host_hands_back_an_unreadable_message_for_the_dead_letters_and_goes_on(tmp_path: Path) -> None:
    stores = RocksStores(tmp_path / "store", 3_600_000, keep_traced=True)
    host = TrailHost(TRACE, 2, stores)
    host.adopt(0, [])
    error = host.take_messages(0, b"\x00garbage")
    assert isinstance(error, BadTrailMessage) and "unreadable" in str(error)
    feed = (1_000, account("a"), account("b"), 100, "THB", "t1", False)
    assert host.take_messages(0, encode_messages([(FEED, "t1", feed)])) is None
    assert len(host.trail) == 1
    stores.close()


def test_a_trail_host_refuses_a_store_that_would_not_carry_its_partitions_state(tmp_path: Path) -> None:
    stores = RocksStores(tmp_path / "store", 3_600_000)
    with pytest.raises(ValueError, match="traced state"):
        TrailHost(TRACE, 2, stores)
    stores.close()


def test_a_trail_host_evicts_its_partitions_old_transfers_and_logs_the_deletions(tmp_path: Path) -> None:
    stores = RocksStores(tmp_path / "store", 3_600_000, keep_traced=True)
    host = TrailHost(TRACE, 2, stores)
    for partition in (0, 1):
        host.adopt(partition, [])
    host.queue_ends({0: 0, 1: 0})
    host.close_batch()  # its RESETs, which a worker would send and read back before delivering in process
    host.flush()
    for partition in (0, 1):
        host.read_to(partition, 0)
    assert not host.waiting()
    old = [transfer(f"old-{n}", f"a{n}", f"b{n}", 100, 1_000) for n in range(20)]
    later = 1_000 + TRACE.history_retention_ms + 60_000  # each partition evicts on its own feed's clock: both see it
    for batch in (old, [transfer(f"new-{n}", f"c{n}", f"d{n}", 100, later) for n in range(10)]):
        host.take_feed(batch)
        host.close_batch()
        host.flush()

    assert host.evict() == 20
    logged = host.close_batch().changelog
    host.flush()
    deleted = {key for rows in logged.values() for key, value in rows if value is None}
    assert {f"old-{n}".encode() for n in range(20)} <= {key[2:] for key in deleted if key[:1] == b"F"}
    assert len(host.trail) == 10
    stores.close()


def test_many_messages_for_a_partition_go_as_several_kafka_messages_in_order() -> None:
    feed = [(FEED, f"t{n}", (n, account("a"), account("b"), 100, "THB", f"t{n}", False)) for n in range(4_500)]
    records = encode_records(feed)
    assert len(records) == 3  # MESSAGES_PER_RECORD a Kafka message: none near the producer's size limit
    assert [message for raw in records for message in decode_messages(raw)] == feed


def test_an_adopted_partition_takes_messages_in_process_only_once_its_queue_is_read_past_its_own_resets(
    tmp_path: Path,
) -> None:
    stores = RocksStores(tmp_path / "store", 3_600_000, keep_traced=True)
    host = TrailHost(TRACE, 2, stores)
    host.adopt(0, [])
    host.queue_ends({0: 3})  # what its earlier owners sent ends at offset 3
    host.read_to(0, 3)
    assert host.waiting() == {0}, "its own RESETs are not even sent yet"
    batch = host.close_batch()
    assert (RESET, 0) in decode_messages(batch.messages[0][0])
    host.sent(0, 4)  # the broker took them: offset 3
    host.flush()
    host.read_to(0, 3)
    assert host.waiting() == {0}
    host.read_to(0, 4)
    assert host.waiting() == set()
    mine = next(txn_id for txn_id in (f"t{n}" for n in range(100)) if partition_of(txn_id, 2) == 0)
    host.take_feed([transfer(mine, "a", "b", 100, 1_000)])
    assert len(host.trail) == 1 and 0 not in host.trail.outbox  # its resolver took it in process
    stores.close()


def test_the_case_role_links_a_payment_proxy_to_an_account_only_a_trail_process_saw(tmp_path: Path) -> None:
    """Spread mode: the bank feed reaches the trail's workers, not the case role, so the accounts they see for the
    first time go with the holdings; the telecom correlation needs them for proxy-only orders."""
    settings = Settings()
    case = Interception(settings, trail=TrailView(settings.trace, 2))
    report = {"report_id": "R-1", "revision": 1, "reported_at": "2026-11-24T04:00:00Z", "victim_id": "v",
              "country": "TH", "scam_type": "investment", "scammer_phones": ["+66812345678"],
              "transfers": [{"from_account": {"institution": "SCB", "account": "111-2-33333"},
                             "to_account": {"institution": "BBL", "account": "999"}, "amount": "100.00",
                             "currency": "THB", "sent_at": "2026-11-24T03:00:00Z", "txn_id": "pay-1"}]}  # fmt: skip
    before = case.process([_input(settings.topic(VICTIM_REPORTS), report)], NOW_MS)
    assert [o for o in before.orders if o.target[2] == "0812345678"] == []  # nobody has seen the account yet

    stores = RocksStores(tmp_path / "store", 3_600_000, keep_traced=True)
    host = TrailHost(settings.trace, 2, stores)
    proxy_account = ("bank", "KBANK", "0812345678")  # the phone as a PromptPay-style account number
    host.take_feed([Transfer("seen-1", ("bank", "BBL", "999"), proxy_account, 500, "THB", NOW_MS - 60_000)])
    batch = host.close_batch()
    host.flush()
    sent = [decode_holdings(raw) for raw in batch.holdings.values()]
    assert proxy_account in {seen for holdings in sent for seen in holdings.accounts}
    holdings = [_input(settings.topic(TRAIL_HOLDINGS), raw) for raw in batch.holdings.values()]
    after = case.process(holdings, NOW_MS)
    assert after.rejected == []
    assert [(o.target, o.status, o.hold) for o in after.orders if o.target == proxy_account] == [
        (proxy_account, "active", 0)
    ]
    stores.close()

    restarted = TrailHost(settings.trace, 2, RocksStores(tmp_path / "store", 3_600_000, keep_traced=True))
    again = restarted.close_batch()
    assert [decode_holdings(raw).accounts for raw in again.holdings.values()] == []  # published before the restart
    restarted.stores.close()


def _input(topic: str, value: object) -> SimpleNamespace:
    raw = value if isinstance(value, bytes) else orjson.dumps(value)
    return SimpleNamespace(topic=topic, partition=0, offset=0, timestamp=NOW_MS, value=raw)
