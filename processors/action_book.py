"""The one owner of issued action versions, for every kind: freezes, suspensions and warnings.

Processors say what each action they touched should say now: an order at version 0, or a
``Withdrawal`` when nothing calls for it any more. The book alone decides whether that is a new
version: only when the fingerprint (what the addressee would act on) differs from the last one
issued, so redelivered or replayed input issues nothing. Consumers keep the highest version per
``action_id``.

The book also keeps each action's escalation level (how many times it missed its SLA): an
escalated action's proposals are re-rendered at that level, and a release keeps the level for a
later re-activation. At start-up the versions already on the actions topics are ``restore``d
(highest version wins); after the inputs are replayed, ``adopt`` attaches the rebuilt order to a
restored version with the same fingerprint, issuing nothing.

Actions expire: ``forget`` drops those whose reports have all expired, issuing nothing, and keeps
only their last version number, so an action called for again goes on from there.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Protocol, Self, TypeVar, cast

ESCALATION_STEP = 10  # priority points added each time an action misses its SLA


class Action(Protocol):
    """What the book needs of an order; every order kind is a frozen dataclass."""

    __dataclass_fields__: ClassVar[dict[str, Any]]

    @property
    def action_id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def status(self) -> str: ...  # "active" or "released"
    @property
    def escalation(self) -> int: ...
    @property
    def issued_at_ms(self) -> int: ...
    @property
    def fingerprint(self) -> Hashable: ...
    @property
    def report_ids(self) -> tuple[str, ...]: ...  # the reports behind it; none for a released version
    @property
    def addressee(self) -> str: ...  # who acts on it

    def escalated(self, level: int, now_ms: int) -> Self | None:
        """This order re-issued after missing its SLA ``level`` times; None for a kind never escalated."""
        ...

    def released(self, now_ms: int, reason: str | None = None) -> Self:
        """This order's released form: what the addressee is told when nothing calls for it any more.

        ``reason`` says why, where it is not the default (a re-trace found nothing): an appeal, an expired hold.
        """
        ...


@dataclass(frozen=True, slots=True)
class Withdrawal:
    """A processor's word that nothing calls for this action any more (``reason``: why, if not the default)."""

    action_id: str
    reason: str | None = None


A = TypeVar("A", bound=Action)


@dataclass(slots=True)
class _Entry:
    order: Action  # the last version: as decided here, or as read back from its topic
    decided: bool  # False while only the copy read back at start-up is known (lists cut, no base priority)
    escalation: int  # times the action missed its SLA; kept across a release


class ActionBook:
    """The last version of every action, by ``action_id``, with its escalation level."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        # Forgotten action_id -> its last version (versions keep rising) and its addressee.
        self._retired: dict[str, tuple[int, str]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[Action]:
        """The last version of every action, as decided here or as read back from its topic."""
        return (entry.order for entry in self._entries.values())

    def last(self, action_id: str) -> Action | None:
        entry = self._entries.get(action_id)
        return entry.order if entry is not None else None

    def live(self, kind: str) -> list[Action]:
        """Active actions of a kind whose last version was decided here (not only read back at start-up)."""
        return [e.order for e in self._entries.values() if e.decided and e.order.kind == kind and _active(e)]

    def settle(self, wanted: Iterable[A | Withdrawal], now_ms: int) -> list[A]:
        """Propose or withdraw each action in turn; the new versions, in the same order."""
        issued: list[A] = []
        for want in wanted:
            if isinstance(want, Withdrawal):
                # Action ids are derived from what they act on, so the release is of the same kind.
                new = cast("A | None", self.withdraw(want.action_id, now_ms, want.reason))
            else:
                new = self.propose(want)
            if new is not None:
                issued.append(new)
        return issued

    def propose(self, order: A) -> A | None:
        """The order as a new version, or None if its content is what was issued last.

        A restored version with the same content adopts the order instead (as ``adopt`` does).
        """
        entry = self._entries.get(order.action_id)
        if entry is None:
            return self._issue(order.action_id, None, order)
        order = _at_level(order, entry.escalation)
        if self._adopt_if_same(entry, order):
            return None
        return self._issue(order.action_id, entry, order)

    def withdraw(self, action_id: str, now_ms: int, reason: str | None = None) -> Action | None:
        """The released version of an action whose last version is active; None otherwise (released once)."""
        entry = self._entries.get(action_id)
        if entry is None or not _active(entry):
            return None
        return self._issue(action_id, entry, entry.order.released(now_ms, reason))

    def escalate(self, action_id: str, now_ms: int) -> Action | None:
        """Re-issue an active action that missed its SLA one level higher; None if there is nothing to escalate.

        A version known only from its topic is not escalated: its copy lacks the base priority
        and the full lists. It is decided again when its batch is redelivered.
        """
        entry = self._entries.get(action_id)
        if entry is None or not entry.decided or not _active(entry):
            return None
        order = entry.order.escalated(entry.escalation + 1, now_ms)
        if order is None:
            return None
        entry.escalation += 1
        return self._issue(action_id, entry, order)

    def restore(self, order: Action) -> None:
        """Remember a version already on its topic (start-up recovery); the highest version wins."""
        entry = self._entries.get(order.action_id)
        if entry is None or entry.order.version < order.version:
            self._entries[order.action_id] = _Entry(order, decided=False, escalation=order.escalation)

    def adopt(self, wanted: Iterable[Action | Withdrawal]) -> int:
        """After recovery: attach rebuilt orders to the restored versions with the same content, issuing nothing.

        Returns how many matched. A restored version that does not match belongs to a batch published
        but not committed: that batch is redelivered and decided again. Withdrawals wait for it too.
        """
        adopted = 0
        for want in wanted:
            if isinstance(want, Withdrawal):
                continue
            entry = self._entries.get(want.action_id)
            if entry is not None and self._adopt_if_same(entry, _at_level(want, entry.escalation)):
                adopted += 1
        return adopted

    def forget(
        self, expired: Callable[[str], bool | None], *, unseen_before_ms: int, released_before_ms: int
    ) -> list[str]:
        """Drop the actions done with, issuing nothing; their ids.

        Done: an active last version every report of which has ``expired``, or a release issued
        before ``released_before_ms`` (its addressee had time to acknowledge it). A report not seen
        (``expired`` says None: its batch is not redelivered yet after a restart, or the input topic
        no longer holds it) counts as expired only behind a version issued before
        ``unseen_before_ms``, one report retention ago: the report arrived before that version, so
        it expired by now. Only the last version number of each action is kept: should anything call
        for it again, it goes out as the next version, never as a version 1 consumers would ignore.
        """
        gone = [
            a for a, entry in self._entries.items() if _done(entry.order, expired, unseen_before_ms, released_before_ms)
        ]
        for action_id in gone:
            order = self._entries.pop(action_id).order
            self._retired[action_id] = (order.version, order.addressee)
        return gone

    def retired(self, action_id: str, addressee: Callable[[str], bool]) -> bool:
        """Whether ``forget`` dropped the action (and nothing called for it since), if ``addressee`` says it was its.

        Nobody else learns that it ever existed: action ids follow from account numbers.
        """
        retired = self._retired.get(action_id)
        return retired is not None and addressee(retired[1])

    def _adopt_if_same(self, entry: _Entry, order: Action) -> bool:
        """Whether the order says what the last version says; if so, it replaces a copy only read back."""
        if entry.order.fingerprint != order.fingerprint:
            return False
        if not entry.decided:  # restored at start-up: the rebuilt order has the full lists and base priority
            entry.order = replace(order, version=entry.order.version)
            entry.decided = True
        return True

    def _issue(self, action_id: str, entry: _Entry | None, order: A) -> A:
        last = self._retired.pop(action_id, (0, ""))[0] if entry is None else entry.order.version
        issued = replace(order, version=last + 1)
        if entry is None:
            self._entries[action_id] = _Entry(issued, decided=True, escalation=0)
        else:
            entry.order, entry.decided = issued, True
        return issued


def _active(entry: _Entry) -> bool:
    return entry.order.status == "active"


def _done(order: Action, expired: Callable[[str], bool | None], unseen_before_ms: int, released_before_ms: int) -> bool:
    if order.status != "active":
        return order.issued_at_ms < released_before_ms
    for report_id in order.report_ids:
        state = expired(report_id)
        if state is False or (state is None and order.issued_at_ms >= unseen_before_ms):
            return False
    return True


def _at_level(order: A, level: int) -> A:
    """A proposal rendered at the action's escalation level (processors propose at level 0)."""
    if not level:
        return order
    escalated = order.escalated(level, order.issued_at_ms)
    return escalated if escalated is not None else order


class Escalatable(Protocol):
    __dataclass_fields__: ClassVar[dict[str, Any]]

    @property
    def base_priority(self) -> int: ...
    @property
    def reasons(self) -> tuple[str, ...]: ...


E = TypeVar("E", bound=Escalatable)


def with_escalation(order: E, level: int, now_ms: int) -> E:
    """The same order after missing its SLA ``level`` times: higher priority, one escalation reason."""
    return replace(
        order,
        escalation=level,
        priority=escalated_priority(order.base_priority, level),
        reasons=(*without_escalation(order.reasons), escalation_reason(level)),
        issued_at_ms=now_ms,
    )


def escalated_priority(base_priority: int, level: int) -> int:
    return min(100, base_priority + ESCALATION_STEP * level)


def escalation_reason(level: int) -> str:
    return f"escalated: not executed within its SLA ({level} time(s))"


def without_escalation(reasons: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(r for r in reasons if not r.startswith("escalated:"))


class Ranked(Protocol):
    @property
    def action_id(self) -> str: ...
    @property
    def priority(self) -> int: ...


R = TypeVar("R", bound=Ranked)


def ranked(orders: Iterable[R]) -> list[R]:
    """The order new versions go out in: highest priority first, then by action id."""
    return sorted(orders, key=lambda o: (-o.priority, o.action_id))
