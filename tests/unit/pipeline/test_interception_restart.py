"""The interception step across a restart: payment-proxy orders, corrections and redelivery.

A restart here is what the worker does: a fresh ``Interception`` reads back the
actions already published (through the wire encoding), replays the committed
inputs, and rebuilds without issuing anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace

import orjson

from pipeline.encode import encode_freeze_action, encode_suspension_action, restore_freeze_order, restore_suspension
from pipeline.interception import BatchResult, Interception
from pipeline.settings import Settings
from pipeline.topics import BANK_TRANSACTIONS, TELECOM_EVENTS, VICTIM_REPORTS
from processors.freeze_orders import FreezeOrder
from schemas.signing import Ed25519Signer

SETTINGS = Settings()
DEV_SIGNER = Ed25519Signer.development()
NOW_MS = 1_795_500_000_000
PHONE = "+66812345678"
PROXY = {"institution": "KBANK", "account": "0812345678"}  # the phone as a PromptPay-style account number
VICTIM = {"institution": "SCB", "account": "111-2-33333"}
OTHER = {"institution": "BBL", "account": "999"}


def _record(topic: str, offset: int, value: dict[str, object]) -> SimpleNamespace:
    return SimpleNamespace(
        topic=SETTINGS.topic(topic), partition=0, offset=offset, timestamp=NOW_MS, value=orjson.dumps(value)
    )


def _report(revision: int, phones: list[str]) -> dict[str, object]:
    return {
        "report_id": "R-1", "revision": revision, "reported_at": "2026-11-24T04:00:00Z", "victim_id": "v",
        "country": "TH", "scam_type": "investment", "scammer_phones": phones,
        "transfers": [{"from_account": VICTIM, "to_account": OTHER, "amount": "100.00", "currency": "THB",
                       "sent_at": "2026-11-24T03:00:00Z", "txn_id": "pay-1"}],
    }  # fmt: skip


def _seen_proxy() -> dict[str, object]:
    # Any transfer that makes the bank feed mention the proxy account.
    return {"txn_id": "seen-1", "from_account": OTHER, "to_account": PROXY, "amount": "5.00", "currency": "THB",
            "executed_at": "2026-11-20T00:00:00Z"}  # fmt: skip


def _restart(published: Sequence[FreezeOrder], committed: Sequence[SimpleNamespace]) -> Interception:
    fresh = Interception(SETTINGS)
    for order in published:
        _, value = encode_freeze_action(order, DEV_SIGNER, SETTINGS.action_limits)
        fresh.restore(restore_freeze_order(value))
    fresh.ingest(committed, BatchResult())
    fresh.rebuild(NOW_MS)
    return fresh


def _latest(orders: Sequence[FreezeOrder]) -> dict[str, FreezeOrder]:
    latest: dict[str, FreezeOrder] = {}
    for order in orders:
        if order.action_id not in latest or order.version > latest[order.action_id].version:
            latest[order.action_id] = order
    return latest


def test_a_proxy_only_order_is_released_after_a_restart_when_the_correction_drops_the_number() -> None:
    first = [_record(VICTIM_REPORTS, 0, _report(1, [PHONE])), _record(BANK_TRANSACTIONS, 1, _seen_proxy())]
    interception = Interception(SETTINGS)
    published = interception.process(first, NOW_MS).orders
    proxy = [o for o in published if o.target[2] == "0812345678"]
    assert [(o.status, o.hold, o.version) for o in proxy] == [("active", 0, 1)]

    restarted = _restart(published, first)
    assert restarted.process(first, NOW_MS).orders == []  # a redelivered batch issues nothing new

    correction = _record(VICTIM_REPORTS, 2, _report(2, []))
    later = restarted.process([correction], NOW_MS).orders
    released = _latest([*published, *later])[proxy[0].action_id]
    assert (released.status, released.version) == ("released", 2)


def test_the_proxy_order_ends_the_same_whether_the_link_or_the_account_is_seen_first() -> None:
    def final(order: list[SimpleNamespace]) -> dict[str, tuple[str, int, tuple[str, ...]]]:
        interception = Interception(SETTINGS)
        orders = [o for record in order for o in interception.process([record], NOW_MS).orders]
        return {k: (o.status, o.hold, o.report_ids) for k, o in _latest(orders).items()}

    report, seen = _record(VICTIM_REPORTS, 0, _report(1, [PHONE])), _record(BANK_TRANSACTIONS, 1, _seen_proxy())
    assert final([report, seen]) == final([seen, report])


def test_a_stale_revision_arriving_late_changes_nothing_and_a_conflicting_one_is_dead_lettered() -> None:
    interception = Interception(SETTINGS)
    interception.process([_record(VICTIM_REPORTS, 0, _report(2, []))], NOW_MS)
    stale = interception.process([_record(VICTIM_REPORTS, 1, _report(1, [PHONE]))], NOW_MS)
    assert (stale.orders, stale.suspensions, stale.rejected) == ([], [], [])

    conflicting = interception.process([_record(VICTIM_REPORTS, 2, _report(2, [PHONE]))], NOW_MS)
    assert [r.rejection.reason for r in conflicting.rejected] == ["conflicting_revision"]
    assert "R-1" in conflicting.rejected[0].rejection.error


def _call(event_id: str, counterparty: str) -> dict[str, object]:
    return {"event_id": event_id, "operator": "AIS", "kind": "call", "msisdn": PHONE,
            "counterparty_msisdn": counterparty, "occurred_at": "2026-11-24T02:00:00Z"}  # fmt: skip


def test_a_crash_between_publishing_and_committing_reissues_no_suspension_version() -> None:
    committed = [_record(VICTIM_REPORTS, 0, _report(1, [PHONE]))]
    uncommitted = [_record(TELECOM_EVENTS, 1, _call("call-1", "+66890000001"))]
    interception = Interception(SETTINGS)
    published = interception.process(committed, NOW_MS).suspensions
    published += interception.process(uncommitted, NOW_MS).suspensions  # sent, then the worker died
    number = [s for s in published if s.target == PHONE]
    assert [s.version for s in number] == [1, 2]  # the call is new evidence

    restarted = Interception(SETTINGS)
    for suspension in published:
        _, value = encode_suspension_action(suspension, DEV_SIGNER, SETTINGS.action_limits)
        restarted.restore(restore_suspension(value))
    restarted.ingest(committed, BatchResult())
    restarted.rebuild(NOW_MS)

    redelivered = restarted.process(uncommitted, NOW_MS)
    assert redelivered.suspensions == []  # version 2 already says this; no version 3 or 4 with the same content
