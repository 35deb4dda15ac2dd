"""The interception step's expiry: what goes when, what stays, and a restart after it.

Reports expire ``hold_duration + expiry_grace`` after their last revision reached the
broker (the record's timestamp); everything they alone stand behind goes with them. A
restart is simulated as in ``test_interception_restart.py``: a fresh ``Interception``
reads back the published actions, replays the committed inputs and rebuilds.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace

import orjson

from pipeline.encode import (
    encode_freeze_action,
    encode_suspension_action,
    encode_victim_warning,
    restore_freeze_order,
    restore_suspension,
    restore_warning,
)
from pipeline.interception import BatchResult, ExpiryCounts, Interception, IssuedAction
from pipeline.settings import Settings
from pipeline.topics import ACTION_ACKS, TELECOM_EVENTS, VICTIM_REPORTS, addressee_spec
from processors.freeze_orders import FreezeOrder
from processors.telecom import SuspensionOrder
from schemas.signing import Ed25519Signer

SETTINGS = Settings()
DEV_SIGNER = Ed25519Signer.development()
T = 1_795_500_000_000  # 2026-11-24T06:00:00Z: the first report reaches the broker
EXPIRES = T + SETTINGS.hold_duration_ms + SETTINGS.expiry_grace_ms  # ... and expires
DAY_MS = 24 * 3600 * 1000
PHONE = "+66812345678"
CALLED = "+66890000001"
VICTIM = {"institution": "SCB", "account": "111-2-33333"}
MULE = {"institution": "KBANK", "account": "123-4-56789"}
MULE_BANK_ACKS = addressee_spec(ACTION_ACKS, MULE["institution"])  # the bank's own ack topic: no signature needed
NOTHING = ExpiryCounts(transactions=0, reports=0, telecom_events=0, holdings=0, actions=0)


def _record(topic: str, offset: int, value: dict[str, object], at_ms: int = T) -> SimpleNamespace:
    return SimpleNamespace(
        topic=SETTINGS.topic(topic), partition=0, offset=offset, timestamp=at_ms, value=orjson.dumps(value)
    )


def _report(report_id: str, revision: int = 1, amount: str = "100.00") -> dict[str, object]:
    return {
        "report_id": report_id, "revision": revision, "reported_at": "2026-11-24T04:00:00Z", "victim_id": "v",
        "country": "TH", "scam_type": "investment", "scammer_phones": [PHONE],
        "transfers": [{"from_account": VICTIM, "to_account": MULE, "amount": amount, "currency": "THB",
                       "sent_at": "2026-11-24T03:00:00Z", "txn_id": f"pay-{report_id}"}],
    }  # fmt: skip


def _call(event_id: str, occurred_at: str = "2026-11-24T02:00:00Z") -> dict[str, object]:
    return {"event_id": event_id, "operator": "AIS", "kind": "call", "msisdn": PHONE,
            "counterparty_msisdn": CALLED, "occurred_at": occurred_at}  # fmt: skip


def _ack(order: FreezeOrder, amount: str) -> dict[str, object]:
    return {"action_id": order.action_id, "version": order.version, "addressee": order.addressee,
            "status": "executed", "amount_held": amount, "acked_at": "2026-11-24T06:05:00Z", "note": ""}  # fmt: skip


FIRST = [_record(VICTIM_REPORTS, 0, _report("R-1")), _record(TELECOM_EVENTS, 1, _call("call-1"))]


def _started() -> tuple[Interception, list[IssuedAction]]:
    """R-1 names the scammer's number and the mule it paid: a freeze, a suspension and a warning."""
    interception = Interception(SETTINGS)
    result = interception.process(FIRST, T)
    published: list[IssuedAction] = [*result.orders, *result.suspensions, *result.warnings]
    assert [(a.kind, a.version) for a in published] == [("freeze", 1), ("suspension", 1), ("warning", 1)]
    return interception, published


def _freeze(actions: Sequence[IssuedAction]) -> FreezeOrder:
    (order,) = [a for a in actions if isinstance(a, FreezeOrder)]
    return order


def _restart(published: Sequence[IssuedAction], committed: Sequence[SimpleNamespace], now_ms: int) -> Interception:
    keys, limits = DEV_SIGNER, SETTINGS.action_limits
    fresh = Interception(SETTINGS)
    for action in published:  # read back through the wire encoding, as the worker reads its topics
        if isinstance(action, FreezeOrder):
            fresh.restore(restore_freeze_order(encode_freeze_action(action, keys, limits)[1]))
        elif isinstance(action, SuspensionOrder):
            fresh.restore(restore_suspension(encode_suspension_action(action, keys, limits)[1]))
        else:
            fresh.restore(restore_warning(encode_victim_warning(action, keys, limits)[1]))
    fresh.ingest(committed, BatchResult())
    fresh.rebuild(now_ms)
    return fresh


def test_a_report_and_everything_only_it_stands_behind_expire_after_the_hold_and_the_grace() -> None:
    interception, published = _started()

    assert interception.expire(EXPIRES - 1) == NOTHING  # one millisecond short: everything is in force
    assert len(interception.actions) == 3 and len(interception.lifecycle) == 2

    counts = interception.expire(EXPIRES)
    assert (counts.reports, counts.actions, counts.holdings) == (1, 3, 1)
    assert "R-1" not in interception.revisions and interception.telecom.reports == {}
    assert all(interception.actions.last(a.action_id) is None for a in published)
    assert len(interception.actions) == 0 and len(interception.lifecycle) == 0
    assert interception.escalate(EXPIRES + DAY_MS).escalated == []  # nothing left to chase
    assert interception.expire(EXPIRES + 1) == NOTHING


def test_telecom_events_expire_on_their_own_clock_once_no_report_needs_them() -> None:
    interception, _ = _started()
    later = [_record(TELECOM_EVENTS, 2, _call("call-2", "2027-01-10T00:00:00Z"), at_ms=T + DAY_MS)]
    interception.process(later, T + DAY_MS)

    assert interception.expire(T + DAY_MS).telecom_events == 0  # R-1 is held: its window keeps call-1
    assert interception.expire(EXPIRES).telecom_events == 1  # R-1 expired: call-1 is past both windows
    assert len(interception.telecom.index) == 1


def test_an_action_a_report_in_force_still_stands_behind_is_not_touched() -> None:
    interception, published = _started()
    second = _record(VICTIM_REPORTS, 2, _report("R-2", amount="50.00"), at_ms=T + 3 * DAY_MS)
    corroborated = interception.process([second], T + 3 * DAY_MS)
    current = {a.action_id: a for a in [*published, *corroborated.actions, *corroborated.warnings]}
    assert {(a.version, a.report_ids) for a in current.values()} == {(2, ("R-1", "R-2"))}

    counts = interception.expire(EXPIRES)

    assert (counts.reports, counts.actions) == (1, 0)
    for action_id, action in current.items():
        assert interception.actions.last(action_id) == action  # same version, same content: R-2 holds it
    assert len(interception.lifecycle) == 2
    assert interception.process([], EXPIRES).actions == []  # expiry decided nothing for the next batch


def test_money_held_goes_down_when_the_hold_expires_and_a_late_ack_is_refused() -> None:
    interception, published = _started()
    freeze = _freeze(published)
    interception.process([_record(MULE_BANK_ACKS, 2, _ack(freeze, "100.00"))], T)
    assert interception.lifecycle.money_held() == {("KBANK", "THB"): 100}

    interception.expire(EXPIRES)
    assert interception.lifecycle.money_held() == {("KBANK", "THB"): 0}

    late = interception.process([_record(MULE_BANK_ACKS, 3, _ack(freeze, "100.00"), at_ms=EXPIRES)], EXPIRES)
    (refused,) = late.rejected
    assert refused.rejection.reason == "expired_action"
    assert freeze.action_id in refused.rejection.error
    assert interception.lifecycle.money_held() == {("KBANK", "THB"): 0}


def test_a_late_revision_of_an_expired_report_is_dead_lettered_and_issues_nothing() -> None:
    interception, _ = _started()
    interception.expire(EXPIRES)

    for offset, late in enumerate([_report("R-1"), _report("R-1", revision=2, amount="70.00")], start=2):
        result = interception.process([_record(VICTIM_REPORTS, offset, late, at_ms=EXPIRES + 1)], EXPIRES + 1)
        assert [r.rejection.reason for r in result.rejected] == ["expired_report"]
        assert (result.actions, result.warnings, result.new_reports) == ([], [], [])
    assert "R-1" not in interception.revisions


def test_a_new_report_after_expiry_continues_the_versions_of_the_forgotten_actions() -> None:
    interception, published = _started()
    interception.expire(EXPIRES)

    reopened = interception.process([_record(VICTIM_REPORTS, 2, _report("R-9"), at_ms=EXPIRES)], EXPIRES)

    reissued = [*reopened.orders, *reopened.suspensions, *reopened.warnings]
    assert [(a.kind, a.version) for a in reissued] == [("freeze", 2), ("suspension", 2), ("warning", 2)]
    assert {a.action_id for a in reissued} == {a.action_id for a in published}
    assert all("R-9" in a.report_ids for a in reissued)


def test_a_restart_after_expiry_resurrects_nothing_and_issues_nothing() -> None:
    interception, published = _started()
    acked = [_record(MULE_BANK_ACKS, 2, _ack(_freeze(published), "100.00"))]
    interception.process(acked, T)
    interception.expire(EXPIRES)

    restarted = _restart(published, [*FIRST, *acked], now_ms=EXPIRES + 1)

    assert len(restarted.actions) == 0 and len(restarted.lifecycle) == 0 and len(restarted.revisions) == 0
    assert restarted.lifecycle.money_held() == {("KBANK", "THB"): 0}
    assert restarted.escalate(EXPIRES + DAY_MS).escalated == []  # the unacked suspension is not chased again
    redelivered = restarted.process(FIRST, EXPIRES + 1)
    assert redelivered.actions == [] and redelivered.warnings == []
    assert {r.rejection.reason for r in redelivered.rejected} == {"expired_report"}
    late_ack = restarted.process([_record(MULE_BANK_ACKS, 3, _ack(_freeze(published), "100.00"))], EXPIRES + 1)
    assert [r.rejection.reason for r in late_ack.rejected] == ["expired_action"]

    reopened = restarted.process([_record(VICTIM_REPORTS, 4, _report("R-9"), at_ms=EXPIRES)], EXPIRES + 1)
    assert sorted((a.kind, a.version) for a in [*reopened.actions, *reopened.warnings]) == [
        ("freeze", 2),
        ("suspension", 2),
        ("warning", 2),
    ]


def test_a_restart_keeps_what_is_still_in_force_and_issues_nothing() -> None:
    interception, published = _started()
    second = [_record(VICTIM_REPORTS, 2, _report("R-2", amount="50.00"), at_ms=T + 3 * DAY_MS)]
    result = interception.process(second, T + 3 * DAY_MS)
    published += [*result.orders, *result.suspensions, *result.warnings]

    restarted = _restart(published, [*FIRST, *second], now_ms=EXPIRES)

    assert sorted(restarted.revisions) == ["R-2"]
    assert sorted((a.kind, a.version) for a in restarted.actions) == [("freeze", 2), ("suspension", 2), ("warning", 2)]
    assert restarted.process(second, EXPIRES).actions == []  # a redelivered batch issues nothing new


def test_a_restart_before_the_reports_batch_was_committed_forgets_nothing_and_issues_nothing() -> None:
    """The crash window: actions published, offsets not committed, so the report is not replayed."""
    _, published = _started()

    restarted = _restart(published, [], now_ms=T + 1)

    assert len(restarted.actions) == 3 and len(restarted.lifecycle) == 2  # the reports behind them are unseen
    redelivered = restarted.process(FIRST, T + 1)
    assert (redelivered.actions, redelivered.warnings) == ([], [])


def test_a_restart_forgets_actions_whose_reports_the_input_topic_no_longer_holds() -> None:
    _, published = _started()

    assert len(_restart(published, [], now_ms=EXPIRES).actions) == 3  # R-1 may still be in force
    restarted = _restart(published, [], now_ms=EXPIRES + 1)  # issued before R-1's retention ago: R-1 expired

    assert len(restarted.actions) == 0 and len(restarted.lifecycle) == 0


def test_an_expired_reports_money_leaves_the_trace_so_a_later_report_does_not_hold_it_again() -> None:
    interception, published = _started()  # R-1 paid the mule 100.00
    second = [_record(VICTIM_REPORTS, 2, _report("R-2", amount="50.00"), at_ms=T + 3 * DAY_MS)]
    interception.process(second, T + 3 * DAY_MS)
    interception.expire(EXPIRES)
    assert "R-1" not in interception.trail.reports

    third = [_record(VICTIM_REPORTS, 3, _report("R-3", amount="30.00"), at_ms=EXPIRES)]
    order = _freeze(interception.process(third, EXPIRES).orders)

    assert (order.version, order.report_ids, order.hold) == (3, ("R-2", "R-3"), 8000)
    # A restart rebuilds the same trace: replaying the topic refuses R-1 as expired.
    restarted = _restart([*published, order], [*FIRST, *second, *third], now_ms=EXPIRES)
    assert restarted.trail.holdings() == interception.trail.holdings()
