"""What happened to every action after it went out: acknowledged, executed, overdue, money held.

The pipeline tells ``ActionLifecycle`` about every action version it emits (``issued``) and
every acknowledgement an institution sends (``acknowledge``); it asks which actions missed
their SLA (``due``) and re-issues those through the action book as a new, escalated version.

Rules:

- SLA: the latest version of an active action must be acknowledged within its priority
  band's deadline (``SlaPolicy``), counted from that version's ``issued_at_ms``. A new
  version, escalated or not, restarts the clock. A released (inactive) version closes the
  action: it is neither due nor open.
- Only an ack of the latest version stops escalation, whatever its status. ``executed`` and
  ``partial`` mean the institution acted. ``rejected`` and ``not_found`` stop escalation too:
  re-sending an order the institution has refused only adds noise to its queue, so those
  are counted (acks by status) and left to the war room to follow up by phone.
- Open (``open_by_band``): active and the latest version not acknowledged as executed or
  partial; a rejected or not-found action stays open for the war room.
- Money held, per (addressee, currency): the sum over actions of the last ``amount_held``
  the addressee reported in an executed or partial ack. A later ack replaces the earlier
  amount for the same action (the change can be negative) unless it is for an older
  version than the amount it would replace. An executed or partial ack of a released
  version without an amount means the hold was lifted: the action holds nothing any more.
- Acks are idempotent: the same ack delivered twice (same version, addressee, status,
  amount and acknowledgement time) changes nothing the second time and is marked
  ``duplicate`` so the pipeline does not count it again.
- Versions of an action are consecutive from 1 (``processors/action_book.py``), so any
  version up to the latest one seen was issued, even if the compacted actions topic no
  longer holds it.

Restart: replaying the actions topics into ``issued`` and then the acks topic into
``acknowledge`` rebuilds the same state (open actions, money held, what is due,
which actions have had their first execution). The actions topics are compacted, so only
the latest version of an action may survive; an ack of a version no longer on the topic
is then taken to be for an active version with the oldest known addressee. That is the
same answer unless the action's addressee changed, or it was released and re-activated.
``report_to_execution_ms`` may also come out differently, as it starts from the earliest
report time among the versions known when the first execution arrives. Outcomes returned
during a replay describe past acks: do not observe them again in metrics.

Expiry: ``forget`` drops actions the action book forgot (every report behind them expired, or a
release long out). They are no longer open or due, and the money they held no longer counts: the
hold has run out. An ack of one arriving later is refused; the pipeline tells the sender it
expired (``expired_action``), as the action book remembers which ids it forgot.

Call ``issued`` before the action is produced: an ack for a version not yet recorded is
refused as ``unknown_version``.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal

from processors.priority import priority_band
from processors.records import Ack

BANDS = ("critical", "high", "medium", "low")
EXECUTED = frozenset({"executed", "partial"})
ACK_STATUSES = frozenset({"executed", "partial", "rejected", "not_found"})
MINUTE_MS = 60 * 1000
# Sums of amounts with up to 18 decimals (ETH) exceed decimal's default 28 digits.
_EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)
_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class SlaPolicy:
    """How long an addressee has to act on an action version, by priority band (milliseconds)."""

    critical_ms: int = 5 * MINUTE_MS
    high_ms: int = 15 * MINUTE_MS
    medium_ms: int = 60 * MINUTE_MS
    low_ms: int = 240 * MINUTE_MS

    def __post_init__(self) -> None:
        for band in BANDS:
            if getattr(self, f"{band}_ms") <= 0:
                raise ValueError(f"the SLA for the {band} band must be positive")

    def deadline_ms(self, priority: int) -> int:
        band = priority_band(priority)
        if band == "critical":
            return self.critical_ms
        if band == "high":
            return self.high_ms
        if band == "medium":
            return self.medium_ms
        return self.low_ms


@dataclass(frozen=True, slots=True)
class AckOutcome:
    """An accepted ack and what it changed, for metrics and logs."""

    action_id: str
    version: int
    status: str
    addressee: str
    kind: str
    first_execution: bool  # the first executed or partial ack of this action, any version
    report_to_execution_ms: int | None  # with first_execution: report received -> ack received, at least 0
    held_change: tuple[str, str, Decimal] | None  # (addressee, currency, delta) applied to money held
    duplicate: bool = False  # already seen: changed nothing, do not count it again


@dataclass(frozen=True, slots=True)
class AckRefused:
    """An ack we cannot match to an action we issued: a dead letter for the sender."""

    reason: str  # unknown_action (also: another institution's), unknown_version, wrong_addressee, unknown_status,
    # expired_action
    error: str


def expired_action(action_id: str) -> AckRefused:
    """The refusal of an ack for an action forgotten on expiry."""
    return AckRefused(
        "expired_action",
        f"action {action_id} has expired (every report behind it expired, or it was released long ago) "
        "and is no longer tracked; this acknowledgement changes nothing",
    )


# (first version, addressee, active): one entry each time either changes; usually just one.
_Era = tuple[int, str, bool]
# What makes two acks the same ack: version, addressee, status, amount_held, acked_at_ms.
_AckKey = tuple[int, str, str, Decimal | None, int]


@dataclass(slots=True)
class _Action:
    kind: str
    currency: str | None
    version: int
    priority: int
    issued_at_ms: int
    report_received_at_ms: int
    eras: list[_Era]
    settled: bool = False  # the latest version has been acknowledged (any status)
    executed: bool = False  # ... as executed or partial
    ever_executed: bool = False
    open_band: str | None = None
    held: dict[str, tuple[int, Decimal]] = field(default_factory=dict)  # addressee -> (version, amount)
    seen: set[_AckKey] = field(default_factory=set)

    @property
    def active(self) -> bool:
        return self.eras[-1][2]

    @property
    def pending(self) -> bool:
        """Still running against its SLA."""
        return self.active and not self.settled

    def era(self, version: int) -> _Era:
        """Addressee and status of a version.

        A version older than any known (gone from the compacted topic) is taken to have been
        active, with the oldest known addressee: an action starts active, and a release only
        ever follows an active version.
        """
        first_version, addressee, _ = self.eras[0]
        if version < first_version:
            return (version, addressee, True)
        found = self.eras[0]
        for era in self.eras:
            if era[0] > version:
                break
            found = era
        return found


class ActionLifecycle:
    """Acks, SLAs and outcomes for every action version the pipeline has emitted."""

    def __init__(self, sla: SlaPolicy | None = None) -> None:
        self.sla = sla if sla is not None else SlaPolicy()
        self._actions: dict[str, _Action] = {}
        # (deadline, action_id, version), popped by due(); entries for superseded versions are skipped.
        self._deadlines: list[tuple[int, str, int]] = []
        self._overdue: set[str] = set()
        self._open: dict[str, int] = dict.fromkeys(BANDS, 0)
        self._held: dict[tuple[str, str], Decimal] = {}

    def __len__(self) -> int:
        return len(self._actions)

    def issued(
        self,
        *,
        action_id: str,
        version: int,
        kind: str,
        addressee: str,
        priority: int,
        currency: str | None,
        active: bool,
        issued_at_ms: int,
        report_received_at_ms: int,
    ) -> None:
        """Record an emitted version. A version at or below the latest one known changes nothing.

        The report time kept is the earliest any version carried: the first report behind the action.
        """
        action = self._actions.get(action_id)
        if action is None:
            action = _Action(
                kind=kind,
                currency=currency,
                version=version,
                priority=priority,
                issued_at_ms=issued_at_ms,
                report_received_at_ms=report_received_at_ms,
                eras=[(version, addressee, active)],
            )
            self._actions[action_id] = action
        else:
            if version <= action.version:
                return
            if (kind, currency) != (action.kind, action.currency):
                raise ValueError(
                    f"action {action_id} was a {action.kind} in {action.currency}, now a {kind} in {currency}: "
                    "action ids must be derived from what they act on"
                )
            action.version = version
            action.priority = priority
            action.issued_at_ms = issued_at_ms
            action.report_received_at_ms = min(action.report_received_at_ms, report_received_at_ms)
            action.settled = action.executed = False
            if action.eras[-1][1:] != (addressee, active):
                action.eras.append((version, addressee, active))
        self._overdue.discard(action_id)
        if active:
            heapq.heappush(self._deadlines, (issued_at_ms + self.sla.deadline_ms(priority), action_id, version))
        self._reopen(action)

    def acknowledge(self, ack: Ack) -> AckOutcome | AckRefused:
        """Apply an institution's ack, or refuse it with a sentence the sender can act on."""
        action = self._actions.get(ack.action_id)
        if action is None or all(addressee != ack.addressee for _, addressee, _ in action.eras):
            # One answer whether the action does not exist or is another institution's: ids follow from
            # account numbers, so any other answer would tell a prober which accounts are frozen.
            return AckRefused(
                "unknown_action",
                f"{ack.action_id!r} is not an action_id we issued to {ack.addressee!r}; acknowledge the action_id "
                "exactly as received",
            )
        if not 1 <= ack.version <= action.version:
            return AckRefused(
                "unknown_version",
                f"action {ack.action_id} has no version {ack.version}; the latest issued is {action.version}",
            )
        _, addressee, active = action.era(ack.version)
        if ack.addressee != addressee:
            return AckRefused(
                "wrong_addressee",
                f"action {ack.action_id} version {ack.version} is not addressed to {ack.addressee!r}; "
                "only the institution it was sent to may acknowledge it",
            )
        if ack.status not in ACK_STATUSES:
            return AckRefused(
                "unknown_status", f"status {ack.status!r} is not one of executed, partial, rejected, not_found"
            )
        key = (ack.version, ack.addressee, ack.status, ack.amount_held, ack.acked_at_ms)
        if key in action.seen:
            return AckOutcome(
                action_id=ack.action_id,
                version=ack.version,
                status=ack.status,
                addressee=ack.addressee,
                kind=action.kind,
                first_execution=False,
                report_to_execution_ms=None,
                held_change=None,
                duplicate=True,
            )
        action.seen.add(key)

        executed = ack.status in EXECUTED
        if ack.version == action.version:
            action.settled = True
            action.executed = executed
            self._overdue.discard(ack.action_id)
            self._reopen(action)
        first_execution = executed and not action.ever_executed
        action.ever_executed = action.ever_executed or executed
        return AckOutcome(
            action_id=ack.action_id,
            version=ack.version,
            status=ack.status,
            addressee=ack.addressee,
            kind=action.kind,
            first_execution=first_execution,
            report_to_execution_ms=(
                max(0, ack.received_at_ms - action.report_received_at_ms) if first_execution else None
            ),
            held_change=self._hold(action, ack, released=not active) if executed else None,
        )

    def due(self, now_ms: int) -> list[str]:
        """Active actions whose latest version is unacknowledged past its SLA, highest priority first.

        An action stays due until it is acknowledged or a new version is issued; ``now_ms`` is
        expected not to go backwards.
        """
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] < now_ms:
            _, action_id, version = heapq.heappop(deadlines)
            action = self._actions.get(action_id)  # None: forgotten since
            if action is not None and action.version == version and action.pending:
                self._overdue.add(action_id)
        return sorted(self._overdue, key=lambda action_id: (-self._actions[action_id].priority, action_id))

    def forget(self, action_ids: Iterable[str]) -> int:
        """Drop expired actions: no longer open, due or holding money; a later ack of one is an unknown action.

        Their deadlines stay in the heap until ``due`` pops and skips them. Returns how many went.
        """
        actions = self._actions
        gone = [(a, action) for a in action_ids if (action := actions.pop(a, None)) is not None]
        for action_id, action in gone:
            self._overdue.discard(action_id)
            if action.open_band is not None:
                self._open[action.open_band] -= 1
            for addressee, (_, amount) in action.held.items():
                if action.currency is not None and amount:  # the hold expired: the money is no longer held
                    pair = (addressee, action.currency)
                    self._held[pair] = _EXACT.subtract(self._held[pair], amount)
        return len(gone)

    def money_held(self) -> dict[tuple[str, str], Decimal]:
        """(addressee, currency) -> amount held; a pair stays (at zero) once it has held anything."""
        return dict(self._held)

    def open_by_band(self) -> dict[str, int]:
        """Active actions not executed, by priority band; every band is present."""
        return dict(self._open)

    def _reopen(self, action: _Action) -> None:
        band = priority_band(action.priority) if action.active and not action.executed else None
        if band != action.open_band:
            if action.open_band is not None:
                self._open[action.open_band] -= 1
            if band is not None:
                self._open[band] += 1
            action.open_band = band

    def _hold(self, action: _Action, ack: Ack, *, released: bool) -> tuple[str, str, Decimal] | None:
        """Replace this addressee's held amount for the action; the change, if any."""
        if action.currency is None:
            return None
        amount = ack.amount_held if ack.amount_held is not None else (_ZERO if released else None)
        if amount is None:
            return None  # executed, amount not given: nothing new about the money
        version, before = action.held.get(ack.addressee, (0, _ZERO))
        if ack.version < version:
            return None
        action.held[ack.addressee] = (ack.version, amount)
        delta = _EXACT.subtract(amount, before)
        if delta == 0:
            return None
        pair = (ack.addressee, action.currency)
        self._held[pair] = _EXACT.add(self._held.get(pair, _ZERO), delta)
        return (ack.addressee, action.currency, delta)
