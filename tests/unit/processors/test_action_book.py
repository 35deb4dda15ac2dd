"""The action book (processors/action_book.py): one owner of versions, escalation and release for every kind."""

from __future__ import annotations

from dataclasses import replace

from processors.action_book import ActionBook, Withdrawal
from processors.freeze_orders import FreezeOrder
from processors.telecom import SuspensionOrder, WarningOrder, suspension_digest, warning_digest

NOW = 1_750_000_000_000


def freeze(hold: int = 40_000, priority: int = 60, action_id: str = "frz-1") -> FreezeOrder:
    return FreezeOrder(
        action_id=action_id,
        version=0,
        status="active",
        target=("bank", "KBANK", "mule"),
        currency="THB",
        hold=hold,
        priority=priority,
        hop=1,
        received=100_000,
        moved_on=100_000 - hold,
        report_ids=("r1",),
        txn_ids=("t1", "t2"),
        reasons=("received 1,000.00 THB of reported money 1 hop(s) from the victim",),
        trail=(),
        issued_at_ms=NOW,
        report_received_at_ms=NOW - 5_000,
        hold_expires_at_ms=NOW + 1_000,
        evidence_digest=f"sha256:{hold}",
        base_priority=priority,
    )


def suspension(evidence: tuple[str, ...] = ("e1",), action_id: str = "sus-1") -> SuspensionOrder:
    return SuspensionOrder(
        action_id=action_id,
        version=0,
        target_type="msisdn",
        target="+66811111111",
        addressee="AIS",
        priority=85,
        reasons=("reported as the scammer's number in 1 report(s)",),
        report_ids=("r1",),
        evidence=evidence,
        issued_at_ms=NOW,
        report_received_at_ms=NOW - 5_000,
        evidence_digest=suspension_digest(("r1",), evidence),
        base_priority=85,
    )


def warning(report_ids: tuple[str, ...] = ("r1",)) -> WarningOrder:
    return WarningOrder(
        warning_id="wrn-1",
        version=0,
        msisdn="+66855555555",
        operator="DTAC",
        scammer_msisdn="+66811111111",
        last_contact_at_ms=NOW - 3_600_000,
        report_ids=report_ids,
        issued_at_ms=NOW,
        evidence_digest=warning_digest(report_ids),
    )


def test_a_new_version_only_when_the_fingerprint_changes() -> None:
    book = ActionBook()
    first = book.propose(freeze())
    assert first is not None and first.version == 1
    assert book.propose(replace(freeze(), issued_at_ms=NOW + 1)) is None  # same content, later: nothing
    second = book.propose(freeze(hold=10_000))
    assert second is not None and (second.version, second.hold) == (2, 10_000)
    assert book.last("frz-1") == second
    # Every kind is versioned by its own action id.
    suspended, warned = book.propose(suspension()), book.propose(warning())
    assert suspended is not None and warned is not None and (suspended.version, warned.version) == (1, 1)


def test_a_withdrawal_releases_an_active_action_once() -> None:
    book = ActionBook()
    assert book.withdraw("frz-1", NOW) is None  # never issued: nothing to release
    book.propose(freeze())
    released = book.withdraw("frz-1", NOW + 1)
    assert isinstance(released, FreezeOrder)
    assert (released.version, released.status, released.hold, released.priority) == (2, "released", 0, 0)
    assert (released.target, released.currency, released.hop) == (("bank", "KBANK", "mule"), "THB", 1)
    assert (released.report_ids, released.trail, released.issued_at_ms) == ((), (), NOW + 1)
    assert released.report_received_at_ms == NOW - 5_000
    assert book.withdraw("frz-1", NOW + 2) is None
    # Called for again: the same action, re-activated with the next version.
    again = book.propose(freeze())
    assert again is not None and (again.version, again.status) == (3, "active")


def test_each_kind_renders_its_own_release() -> None:
    book = ActionBook()
    book.settle([suspension(), warning()], NOW)
    lifted, unwarned = book.settle([Withdrawal("sus-1"), Withdrawal("wrn-1"), Withdrawal("unknown")], NOW + 1)
    assert isinstance(lifted, SuspensionOrder) and isinstance(unwarned, WarningOrder)
    assert (lifted.status, lifted.addressee, lifted.evidence, lifted.priority) == ("released", "AIS", (), 0)
    assert (unwarned.status, unwarned.operator, unwarned.report_ids) == ("released", "DTAC", ())
    assert unwarned.evidence_digest == warning_digest(())


def test_escalation_is_one_rule_for_every_kind() -> None:
    book = ActionBook()
    book.settle([freeze(priority=60), suspension(), warning()], NOW)

    frozen = book.escalate("frz-1", NOW + 1)
    suspended = book.escalate("sus-1", NOW + 1)
    assert isinstance(frozen, FreezeOrder) and isinstance(suspended, SuspensionOrder)
    assert (frozen.version, frozen.escalation, frozen.priority, frozen.issued_at_ms) == (2, 1, 70, NOW + 1)
    assert (suspended.version, suspended.escalation, suspended.priority) == (2, 1, 95)
    assert frozen.reasons[-1].startswith("escalated:") and suspended.reasons[-1].startswith("escalated:")
    again = book.escalate("sus-1", NOW + 2)
    assert again is not None and (again.version, again.escalation) == (3, 2)
    assert isinstance(again, SuspensionOrder) and again.priority == 100  # capped
    assert sum(r.startswith("escalated:") for r in again.reasons) == 1
    assert book.escalate("wrn-1", NOW + 1) is None  # warnings are never escalated
    assert book.escalate("unknown", NOW + 1) is None


def test_a_proposal_for_an_escalated_action_keeps_its_level_even_across_a_release() -> None:
    book = ActionBook()
    book.propose(freeze(priority=60))
    book.escalate("frz-1", NOW + 1)
    assert book.propose(freeze(priority=60)) is None  # the processors' proposal, rendered at level 1: no change
    changed = book.propose(freeze(hold=10_000, priority=50))
    assert changed is not None
    assert (changed.version, changed.escalation, changed.priority, changed.base_priority) == (3, 1, 60, 50)
    assert changed.reasons[-1] == "escalated: not executed within its SLA (1 time(s))"

    released = book.withdraw("frz-1", NOW + 2)
    assert released is not None and released.escalation == 0
    assert book.escalate("frz-1", NOW + 3) is None  # a released action is not escalated
    back = book.propose(freeze(priority=60))
    assert back is not None and (back.version, back.escalation, back.priority) == (5, 1, 70)


def test_restore_keeps_the_highest_version() -> None:
    book = ActionBook()
    book.restore(replace(suspension(), version=7))
    book.restore(replace(suspension(evidence=("e1", "e2")), version=3))  # an older copy: ignored
    last = book.last("sus-1")
    assert last is not None and (last.version, last.fingerprint) == (7, suspension().fingerprint)
    assert book.propose(suspension()) is None
    nxt = book.propose(suspension(evidence=("e1", "e2")))
    assert nxt is not None and nxt.version == 8


def test_rebuilding_adopts_matching_versions_and_issues_nothing() -> None:
    book = ActionBook()
    # As read back from the topic: lists cut to what the wire carries, no base priority, an escalation.
    on_the_wire = replace(suspension(evidence=("e1", "e2", "e3")), version=4)
    escalated = replace(on_the_wire.escalated(1, NOW), evidence=("e1",), base_priority=0)
    book.restore(escalated)
    assert book.live("suspension") == []  # only read back, not decided here

    assert book.adopt([suspension(evidence=("e1",))]) == 0  # other content: a batch that will be redelivered
    assert book.adopt([warning(), Withdrawal("sus-1")]) == 0  # nothing restored for the warning; no release
    assert book.adopt([suspension(evidence=("e1", "e2", "e3"))]) == 1  # rebuilt at level 0, matched at level 1
    adopted = book.last("sus-1")
    assert isinstance(adopted, SuspensionOrder)
    assert (adopted.version, adopted.escalation, adopted.evidence, adopted.base_priority) == (
        4,
        1,
        ("e1", "e2", "e3"),
        85,
    )
    assert book.live("suspension") == [adopted]
    assert len(book) == 1  # adopt never records anything new


def test_after_restore_and_rebuild_a_changed_proposal_continues_the_version_sequence() -> None:
    book = ActionBook()
    book.restore(replace(freeze(), version=7))
    book.restore(replace(warning(), version=2))
    assert book.adopt([freeze(), warning()]) == 2

    assert book.settle([freeze(), warning()], NOW + 1) == []  # a redelivered batch: nothing new
    changed = book.settle([freeze(hold=10_000), warning(report_ids=("r1", "r2"))], NOW + 2)
    assert [(o.action_id, o.version) for o in changed] == [("frz-1", 8), ("wrn-1", 3)]


def test_a_restored_version_never_rebuilt_is_released_from_its_copy_but_not_escalated() -> None:
    book = ActionBook()
    book.restore(replace(suspension(), version=2, evidence=()))
    assert book.escalate("sus-1", NOW) is None  # its copy lacks the base priority: wait for the redelivery
    released = book.withdraw("sus-1", NOW + 1)
    assert isinstance(released, SuspensionOrder)
    assert (released.version, released.status, released.addressee) == (3, "released", "AIS")


def test_settle_keeps_the_order_it_is_given_and_returns_only_new_versions() -> None:
    book = ActionBook()
    book.propose(suspension(action_id="sus-b"))
    issued = book.settle([freeze(action_id="frz-z"), Withdrawal("sus-b"), freeze(action_id="frz-a")], NOW)
    assert [(o.action_id, o.status) for o in issued] == [
        ("frz-z", "active"),
        ("sus-b", "released"),
        ("frz-a", "active"),
    ]
    assert book.settle([freeze(action_id="frz-z"), Withdrawal("sus-b")], NOW + 1) == []


# -- expiry ---------------------------------------------------------------------------------------

RETENTION = 8 * 24 * 3_600_000  # a report's hold and grace


def forget(book: ActionBook, expired: set[str], now_ms: int = NOW, grace_ms: int = 0) -> list[str]:
    """Forget as the pipeline does, with ``expired`` the reports that expired and r1..r9 otherwise in force."""

    def state(report_id: str) -> bool | None:
        return True if report_id in expired else (False if report_id.startswith("r") else None)

    return book.forget(state, unseen_before_ms=now_ms - RETENTION, released_before_ms=now_ms - grace_ms)


def test_forget_drops_only_actions_whose_reports_all_expired_and_issues_nothing() -> None:
    book = ActionBook()
    old = book.propose(freeze(action_id="frz-old"))  # behind it: r1 only
    shared = book.propose(replace(suspension(), report_ids=("r1", "r2")))
    warned = book.propose(warning(report_ids=("r2",)))
    assert old is not None and shared is not None and warned is not None

    assert forget(book, {"r1"}) == ["frz-old"]

    assert book.last("frz-old") is None and book.retired("frz-old", "KBANK".__eq__)
    assert not book.retired("frz-old", "SCB".__eq__)  # another institution does not learn it ever existed
    assert book.last("sus-1") == shared and book.last("wrn-1") == warned  # in force: untouched, same version
    assert len(book) == 2
    assert book.withdraw("frz-old", NOW) is None and book.escalate("frz-old", NOW) is None  # nothing to release


def test_a_report_not_seen_counts_as_expired_only_behind_a_version_older_than_its_retention() -> None:
    book = ActionBook()
    book.propose(replace(freeze(), report_ids=("unseen",)))  # after a restart: its batch not redelivered yet

    assert forget(book, set(), now_ms=NOW + RETENTION) == []
    assert forget(book, set(), now_ms=NOW + RETENTION + 1) == ["frz-1"]  # the report arrived before NOW


def test_a_release_is_forgotten_once_its_addressee_had_the_grace_to_acknowledge_it() -> None:
    book = ActionBook()
    book.propose(freeze())
    released = book.withdraw("frz-1", NOW + 10)
    assert released is not None and released.report_ids == ()

    assert forget(book, set(), now_ms=NOW + 20, grace_ms=10) == []
    assert forget(book, set(), now_ms=NOW + 21, grace_ms=10) == ["frz-1"]


def test_versions_keep_rising_when_a_forgotten_action_is_called_for_again() -> None:
    book = ActionBook()
    book.propose(freeze())
    book.propose(freeze(hold=10_000))
    forget(book, {"r1"})

    again = book.propose(replace(freeze(hold=10_000), report_ids=("r9",)))
    assert again is not None and again.version == 3  # never a version 1 that consumers keeping the highest ignore
    assert not book.retired("frz-1", "KBANK".__eq__)
    later = book.propose(replace(freeze(hold=5_000), report_ids=("r9",)))
    assert later is not None and later.version == 4
