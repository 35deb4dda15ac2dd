"""Lifting an action other than by a re-trace: on appeal, and when a hold runs out.

Rules (README, *Release and appeal*):

- **Who may ask.** The action's addressee (the institution holding the account, the operator or
  platform) or the war room. Anyone else gets the answer for an action that does not exist
  (``unknown_action``): action ids follow from account numbers, so nothing else may tell them apart.
- **Appeal.** Refused (``reports_still_arriving``) while new reports keep arriving for the target:
  a report behind the action, still in force, that reached the broker at or after ``quiet_period``
  before the request did. Granted otherwise: the action book issues a ``released`` version. An
  action already released, or unknown, or forgotten, is refused with that reason.
- **A grant stands until new evidence.** Whatever later re-trace proposes the action again is
  turned back into a release, unless a report behind it reached the broker after the grant.
- **Expiry.** A freeze whose ``hold_expires_at`` has passed without renewal (no newer report moved
  it on) is released, and a re-trace does not revive it.

Every time is a broker time (record timestamps, report arrival), never the requester's clock, so
the decision is the same when a request is redelivered. A redelivered request already granted is
answered ``granted`` again, with the version it released.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from processors.action_book import Action, Withdrawal
from processors.freeze_orders import FreezeOrder
from processors.records import ReleaseRequest, partner_id

A = TypeVar("A", bound=Action)
# report_id -> when its revision in force reached the broker; None once it expired (or was never seen).
ReportArrival = Callable[[str], int | None]


@dataclass(frozen=True, slots=True)
class ReleaseDecision:
    """The answer a requester gets: granted (with the released version) or refused, and why, in a sentence."""

    request: ReleaseRequest
    granted: bool
    reason: str  # granted, unknown_action (also: another institution's), expired_action, already_released,
    # reports_still_arriving
    explanation: str
    released_version: int | None = None


@dataclass(frozen=True, slots=True)
class Grant:
    """A release granted on appeal: it stands until a report arrives after ``granted_at_ms``."""

    action_id: str
    request_id: str
    requester: str
    granted_at_ms: int
    version: int  # the released version


def appeal_reason(request: ReleaseRequest) -> str:
    return f"released on appeal by {request.requester} (request {request.request_id}): {request.reason}"


def hold_expired_reason(expires_at_ms: int) -> str:
    return f"the hold expired (hold_expires_at, epoch ms {expires_at_ms}) and no new report renewed it: lift the hold"


class ReleaseDesk:
    """Decides release requests and keeps the grants; releases expired holds."""

    def __init__(self, *, quiet_period_ms: int, war_room: str) -> None:
        self.quiet_period_ms = quiet_period_ms
        self.war_room = partner_id(war_room)
        self._grants: dict[str, Grant] = {}

    def __len__(self) -> int:
        return len(self._grants)

    def grant_of(self, action_id: str) -> Grant | None:
        return self._grants.get(action_id)

    def refusal(self, request: ReleaseRequest, action: Action | None, arrival: ReportArrival) -> ReleaseDecision | None:
        """Why the request is refused, or None: grant it (the caller has the action book issue the release).

        ``action`` is the action's last version; ``arrival`` tells when each report behind it arrived.
        """
        action_id = request.action_id
        if action is None or request.requester not in (self.war_room, partner_id(_addressee(action))):
            # One answer whether the action does not exist or is another institution's: ids follow from
            # account numbers, so any other answer would tell a prober which accounts are frozen.
            return _refused(
                request, "unknown_action", f"{action_id!r} is not an action in force that {request.requester!r} may "
                "release: only its addressee or the war room may ask",
            )  # fmt: skip
        if action.status != "active":
            return _refused(request, "already_released", f"action {action_id} version {action.version} is released")
        since = request.received_at_ms - self.quiet_period_ms
        recent = sorted(r for r in action.report_ids if (at := arrival(r)) is not None and at >= since)
        if recent:
            hours = self.quiet_period_ms / 3_600_000
            return _refused(
                request,
                "reports_still_arriving",
                f"{len(recent)} report(s) behind action {action_id} arrived within {hours:g} h of this request "
                f"(first: {recent[0]}); ask again once none has for {hours:g} h",
            )
        return None

    def granted(self, request: ReleaseRequest, released: Action, now_ms: int) -> ReleaseDecision:
        """Record the grant of ``request``, now that ``released`` (the released version) is issued ``now_ms``.

        The answer says ``now_ms`` as ``decided_at``, from which a restart restores the grant.
        """
        self._grants[released.action_id] = Grant(
            action_id=released.action_id,
            request_id=request.request_id,
            requester=request.requester,
            granted_at_ms=now_ms,
            version=released.version,
        )
        return _granted(request, released.version)

    def already_granted(self, request: ReleaseRequest) -> ReleaseDecision | None:
        """The same answer again for a redelivered request whose grant stands."""
        grant = self._grants.get(request.action_id)
        if grant is None or grant.request_id != request.request_id or grant.requester != request.requester:
            return None
        return _granted(request, grant.version)

    def restore(self, grant: Grant) -> None:
        """Start-up recovery: a grant read back from the answers topic; the latest per action wins."""
        known = self._grants.get(grant.action_id)
        if known is None or known.version < grant.version:
            self._grants[grant.action_id] = grant

    def uphold(self, wanted: Iterable[A | Withdrawal], arrival: ReportArrival, now_ms: int) -> list[A | Withdrawal]:
        """Proposals as they stand after grants and expired holds: what neither allows becomes a release.

        A grant that a report arriving after it overrides is dropped: the action goes out again.
        """
        upheld: list[A | Withdrawal] = []
        for want in wanted:
            if not isinstance(want, Withdrawal):
                grant = self._grants.get(want.action_id)
                if grant is not None:
                    if any((at := arrival(r)) is not None and at > grant.granted_at_ms for r in want.report_ids):
                        del self._grants[want.action_id]  # new evidence: the appeal no longer holds
                    else:
                        want = Withdrawal(want.action_id, _grant_reason(grant))
                if isinstance(want, FreezeOrder) and want.hold_expires_at_ms <= now_ms:
                    want = Withdrawal(want.action_id, hold_expired_reason(want.hold_expires_at_ms))
            upheld.append(want)
        return upheld

    def forget(self, action_ids: Iterable[str]) -> None:
        """Drop the grants of actions the action book forgot."""
        for action_id in action_ids:
            self._grants.pop(action_id, None)


def expired_holds(live_freezes: Iterable[Action], now_ms: int) -> list[Withdrawal]:
    """Releases for the active freezes whose hold ran out without renewal."""
    return [
        Withdrawal(order.action_id, hold_expired_reason(order.hold_expires_at_ms))
        for order in live_freezes
        if isinstance(order, FreezeOrder) and order.hold_expires_at_ms <= now_ms
    ]


def _addressee(action: Action) -> str:
    addressee = getattr(action, "addressee", None)
    return addressee if isinstance(addressee, str) else ""


def _grant_reason(grant: Grant) -> str:
    return f"released on appeal by {grant.requester} (request {grant.request_id}); no report has arrived since"


def _refused(request: ReleaseRequest, reason: str, explanation: str) -> ReleaseDecision:
    return ReleaseDecision(request, granted=False, reason=reason, explanation=explanation)


def _granted(request: ReleaseRequest, version: int) -> ReleaseDecision:
    return ReleaseDecision(
        request,
        granted=True,
        reason="granted",
        explanation=f"action {request.action_id} is released as version {version}",
        released_version=version,
    )
