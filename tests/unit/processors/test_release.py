"""Release on appeal and on expiry (processors/release.py): refused while reports keep coming, granted after."""

from __future__ import annotations

from dataclasses import replace

from processors.action_book import ActionBook, Withdrawal
from processors.freeze_orders import FreezeOrder
from processors.records import ReleaseRequest
from processors.release import ReleaseDesk, expired_holds

HOUR = 3_600_000
NOW = 1_750_000_000_000
QUIET = 24 * HOUR


def freeze(report_ids: tuple[str, ...] = ("r1",), hold_expires_at_ms: int = NOW + 7 * 24 * HOUR) -> FreezeOrder:
    return FreezeOrder(
        action_id="frz-1",
        version=0,
        status="active",
        target=("bank", "KBANK", "mule"),
        currency="THB",
        hold=40_000,
        priority=60,
        hop=1,
        received=100_000,
        moved_on=60_000,
        report_ids=report_ids,
        txn_ids=("t1",),
        reasons=("received 1,000.00 THB of reported money 1 hop(s) from the victim",),
        trail=(),
        issued_at_ms=NOW,
        report_received_at_ms=NOW,
        hold_expires_at_ms=hold_expires_at_ms,
        evidence_digest="sha256:1",
        base_priority=60,
    )


def request(at_ms: int, requester: str = "kbank", request_id: str = "rq-1") -> ReleaseRequest:
    return ReleaseRequest(
        request_id=request_id,
        action_id="frz-1",
        requester=requester,
        reason="the customer showed the money is a salary",
        requested_at_ms=at_ms,
        received_at_ms=at_ms,
    )


class World:
    """A desk, an action book holding one active freeze, and when each report arrived."""

    def __init__(self, arrivals: dict[str, int]) -> None:
        self.desk = ReleaseDesk(quiet_period_ms=QUIET, war_room="war-room")
        self.book = ActionBook()
        self.arrivals = arrivals
        self.book.settle([freeze(tuple(sorted(arrivals)))], NOW)

    def ask(self, rq: ReleaseRequest) -> tuple[bool, str, FreezeOrder | None]:
        """What the pipeline does with a request: refuse, or have the book release and record the grant."""
        again = self.desk.already_granted(rq)
        if again is not None:
            return again.granted, again.reason, None
        refusal = self.desk.refusal(rq, self.book.last(rq.action_id), self.arrivals.get)
        if refusal is not None:
            return refusal.granted, refusal.reason, None
        released = self.book.withdraw(rq.action_id, rq.received_at_ms, "appeal")
        assert isinstance(released, FreezeOrder)
        decision = self.desk.granted(rq, released, rq.received_at_ms)
        return decision.granted, decision.reason, released


def test_a_request_is_refused_while_a_report_arrived_within_the_quiet_period() -> None:
    world = World({"r1": NOW - 30 * HOUR, "r2": NOW - 2 * HOUR})

    granted, reason, released = world.ask(request(NOW))

    assert (granted, reason, released) == (False, "reports_still_arriving", None)
    assert world.book.last("frz-1").status == "active"  # type: ignore[union-attr]


def test_a_request_after_the_quiet_period_is_granted_with_a_released_version() -> None:
    world = World({"r1": NOW - 30 * HOUR, "r2": NOW - 25 * HOUR})

    granted, reason, released = world.ask(request(NOW))

    assert (granted, reason) == (True, "granted")
    assert released is not None
    assert (released.version, released.status, released.hold, released.reasons) == (2, "released", 0, ("appeal",))


def test_the_quiet_period_counts_from_the_broker_time_of_the_request_not_its_own_clock() -> None:
    world = World({"r1": NOW - 2 * HOUR})
    backdated = replace(request(NOW), requested_at_ms=NOW + 48 * HOUR)

    assert world.ask(backdated)[1] == "reports_still_arriving"


def test_an_expired_report_no_longer_counts_as_arriving() -> None:
    world = World({"r1": NOW - 2 * HOUR})
    del world.arrivals["r1"]  # its revision expired: the revisions store no longer knows it

    assert world.ask(request(NOW))[:2] == (True, "granted")


def test_only_the_addressee_or_the_war_room_may_ask() -> None:
    world = World({"r1": NOW - 30 * HOUR})

    assert world.ask(request(NOW, requester="scb"))[1] == "unknown_action"  # as if it did not exist: no probing
    assert world.ask(request(NOW, requester="war-room"))[:2] == (True, "granted")


def test_an_unknown_or_released_action_is_refused_and_a_redelivered_grant_is_answered_the_same() -> None:
    world = World({"r1": NOW - 30 * HOUR})
    assert world.ask(replace(request(NOW), action_id="frz-other"))[1] == "unknown_action"
    assert world.ask(request(NOW))[:2] == (True, "granted")

    assert world.ask(request(NOW))[:2] == (True, "granted")  # redelivered: same answer, no new version
    assert world.book.last("frz-1").version == 2  # type: ignore[union-attr]
    assert world.ask(request(NOW, request_id="rq-2"))[1] == "already_released"


def test_a_grant_turns_a_re_proposal_without_new_reports_back_into_a_release() -> None:
    world = World({"r1": NOW - 30 * HOUR})
    world.ask(request(NOW))

    upheld = world.desk.uphold([freeze(("r1",))], world.arrivals.get, NOW + HOUR)

    assert isinstance(upheld[0], Withdrawal)
    assert world.book.settle(upheld, NOW + HOUR) == []  # already released: nothing new goes out


def test_a_report_arriving_after_the_grant_lets_the_order_out_again() -> None:
    world = World({"r1": NOW - 30 * HOUR})
    world.ask(request(NOW))
    world.arrivals["r2"] = NOW + HOUR

    upheld = world.desk.uphold([freeze(("r1", "r2"))], world.arrivals.get, NOW + HOUR)
    (reissued,) = world.book.settle(upheld, NOW + HOUR)

    assert (reissued.version, reissued.status) == (3, "active")
    assert world.desk.grant_of("frz-1") is None


def test_a_hold_past_its_expiry_is_released_and_a_re_trace_does_not_revive_it() -> None:
    world = World({"r1": NOW})
    expires = NOW + 7 * 24 * HOUR

    assert expired_holds(world.book.live("freeze"), expires - 1) == []
    (release,) = expired_holds(world.book.live("freeze"), expires)
    (released,) = world.book.settle([release], expires)
    upheld = world.desk.uphold([freeze(("r1",), hold_expires_at_ms=expires)], world.arrivals.get, expires + 1)

    assert (released.status, released.version) == ("released", 2)
    assert "hold expired" in released.reasons[0]
    assert isinstance(upheld[0], Withdrawal)
    assert world.book.settle(upheld, expires + 1) == []


def test_a_renewed_hold_is_not_released() -> None:
    world = World({"r1": NOW})
    renewed = freeze(("r1", "r2"), hold_expires_at_ms=NOW + 8 * 24 * HOUR)
    world.book.settle([replace(renewed, evidence_digest="sha256:2")], NOW + 24 * HOUR)

    assert expired_holds(world.book.live("freeze"), NOW + 7 * 24 * HOUR) == []
