"""Report corrections: the highest revision of a report_id is in force, whatever the arrival order."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from processors.records import Report, Transfer
from processors.report_revisions import ReportRevisions, RevisionDecision

VICTIM = ("bank", "SCB", "111-2-33333")
MULE = ("bank", "KBANK", "123-4-56789")


def report(revision: int = 1, amount: int = 2_500_000, received_at_ms: int = 1_000, report_id: str = "TH-1") -> Report:
    return Report(
        report_id=report_id,
        reported_at_ms=900,
        received_at_ms=received_at_ms,
        victim_id="V-9",
        country="TH",
        scam_type="investment",
        transfers=(Transfer(f"{report_id}#0", VICTIM, MULE, amount, "THB", 500),),
        revision=revision,
    )


def test_the_first_revision_of_a_report_is_new_and_in_force() -> None:
    revisions = ReportRevisions()
    first = report()

    assert revisions.receive(first) == RevisionDecision("new", first)
    assert revisions.get("TH-1") == first
    assert dict(revisions) == {"TH-1": first}


def test_a_higher_revision_is_a_correction_that_replaces_the_one_in_force() -> None:
    revisions = ReportRevisions()
    first, corrected = report(), report(revision=2, amount=3_000_000)
    revisions.receive(first)

    decision = revisions.receive(corrected)

    assert decision == RevisionDecision("correction", corrected, replaced=first)
    assert decision.accepted
    assert revisions.get("TH-1") == corrected


def test_the_same_revision_and_content_received_again_is_a_duplicate() -> None:
    revisions = ReportRevisions()
    first = report()
    revisions.receive(first)

    decision = revisions.receive(replace(first, received_at_ms=9_000))

    assert decision == RevisionDecision("duplicate", first)
    assert not decision.accepted
    assert decision.reason is None
    assert revisions.get("TH-1") == first  # the first arrival time is kept


def test_a_lower_revision_arriving_late_is_stale_and_changes_nothing() -> None:
    revisions = ReportRevisions()
    corrected = report(revision=3, amount=3_000_000)
    revisions.receive(corrected)

    decision = revisions.receive(report(revision=2))

    assert decision == RevisionDecision("stale", corrected)
    assert not decision.accepted
    assert decision.reason is None
    assert revisions.get("TH-1") == corrected


def test_other_content_under_the_same_revision_conflicts_and_the_first_stays_in_force() -> None:
    revisions = ReportRevisions()
    first = report(revision=2)
    revisions.receive(first)

    decision = revisions.receive(report(revision=2, amount=3_000_000, received_at_ms=2_000))

    assert decision.outcome == "conflicting"
    assert not decision.accepted
    assert decision.effective == first
    assert decision.reason == "conflicting_revision"
    assert decision.error == (
        "report TH-1 revision 2 differs from the revision 2 already received (in transfers); "
        "send a correction with revision 3 or higher"
    )
    assert revisions.get("TH-1") == first


def test_reports_are_kept_apart_by_report_id() -> None:
    revisions = ReportRevisions()
    one, other = report(revision=2), report(report_id="TH-2")

    assert revisions.receive(one).outcome == "new"
    assert revisions.receive(other).outcome == "new"
    assert len(revisions) == 2
    assert revisions.get("TH-3") is None
    assert dict(revisions.items()) == {"TH-1": one, "TH-2": other}


# --- any arrival order ---------------------------------------------------------------------


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[list[Report], list[Report]]:
    """Revisions of one report with distinct numbers (any gaps), delivered shuffled, some more than once."""
    numbers = draw(st.lists(st.integers(min_value=1, max_value=2**31 - 1), min_size=1, max_size=6, unique=True))
    # Corrections may restore an earlier content, so two revisions can hold the same content.
    sent = [report(revision=n, amount=draw(st.sampled_from([100, 200, 300]))) for n in numbers]
    redelivered = draw(st.lists(st.sampled_from(sent), max_size=6))
    arrivals = draw(st.permutations(sent + redelivered))
    return sent, [replace(r, received_at_ms=at) for at, r in enumerate(arrivals)]


@given(deliveries())
def test_any_arrival_order_ends_with_the_highest_revision_in_force(
    case: tuple[list[Report], list[Report]],
) -> None:
    sent, arrivals = case
    revisions = ReportRevisions()

    decisions = [revisions.receive(arrived) for arrived in arrivals]

    highest = max(sent, key=lambda r: r.revision)
    effective = revisions.get("TH-1")
    assert effective is not None
    assert replace(effective, received_at_ms=0) == replace(highest, received_at_ms=0)
    assert all(decision.outcome != "conflicting" for decision in decisions)
    # Each accepted report is the only one in force from then on until a higher one replaces it.
    accepted = [d.effective.revision for d in decisions if d.accepted]
    assert accepted == sorted(set(accepted))
    assert accepted[-1] == highest.revision


# -- expiry ---------------------------------------------------------------------------------------

RETENTION_MS = 100_000  # the hold duration plus the grace period
CLOSED_MS = 1_000_000  # how long the input topic keeps a report


def expiring() -> ReportRevisions:
    return ReportRevisions(RETENTION_MS, closed_ms=CLOSED_MS)


def test_a_report_expires_its_retention_after_its_last_revision_arrived() -> None:
    revisions = expiring()
    revisions.receive(report(revision=1, received_at_ms=1_000))
    revisions.receive(report(revision=2, amount=3_000_000, received_at_ms=50_000))  # the correction renews it
    revisions.receive(report(report_id="TH-2", received_at_ms=2_000))

    assert revisions.expire(101_999) == []
    assert revisions.expire(102_000) == ["TH-2"]
    assert "TH-2" not in revisions and "TH-1" in revisions
    assert (revisions.expired("TH-2"), revisions.expired("TH-1"), revisions.expired("TH-9")) == (True, False, None)
    assert revisions.expire(150_000) == ["TH-1"]
    assert len(revisions) == 0 and "TH-1" not in revisions


def test_anything_arriving_for_an_expired_report_is_refused_and_changes_nothing() -> None:
    revisions = expiring()
    first = report(revision=2, received_at_ms=1_000)
    revisions.receive(first)
    revisions.expire(101_000)

    for late in (first, report(revision=3, amount=1), report(revision=1), report(revision=2, amount=1)):
        decision = revisions.receive(replace(late, received_at_ms=120_000))
        assert (decision.outcome, decision.reason, decision.effective) == ("expired", "expired_report", None)
        assert "TH-1" in decision.error and "new report_id" in decision.error
        assert not decision.accepted
    assert "TH-1" not in revisions


def test_a_replay_refuses_a_late_revision_as_the_running_worker_did() -> None:
    first, late = report(revision=1, received_at_ms=1_000), report(revision=2, amount=1, received_at_ms=110_000)
    running = expiring()
    running.receive(first)
    assert running.expire(105_000) == ["TH-1"]
    assert running.receive(late).outcome == "expired"

    replayed = expiring()  # after a restart: both records, nothing expired yet
    replayed.receive(first)
    assert replayed.receive(late).outcome == "expired"
    assert replayed["TH-1"] == first
    assert replayed.expire(200_000) == ["TH-1"]


def test_a_closed_report_id_is_new_again_once_the_topic_no_longer_holds_the_report() -> None:
    revisions = expiring()
    revisions.receive(report(received_at_ms=1_000))
    revisions.expire(101_000)  # closed at 101_000
    revisions.expire(101_000 + CLOSED_MS - 1)
    assert revisions.receive(report(received_at_ms=101_000 + CLOSED_MS - 1)).outcome == "expired"

    revisions.expire(101_000 + CLOSED_MS)
    assert revisions.expired("TH-1") is None  # as after a restart, once the topic no longer holds it
    again = report(received_at_ms=101_000 + CLOSED_MS)
    assert revisions.receive(again) == RevisionDecision("new", again)
