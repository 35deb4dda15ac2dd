"""Ground truth for every baht of the simulated world: balances, stolen money, and where it went.

The world (``connectors.scam_world``) books every movement here, on the feed or off it
(cash at an ATM, a trade at the exchange). The ledger knows what no trace can:

- **which money is stolen.** A victim's payment turns clean money into a *lot* of that
  case's stolen money at the gang's account. Money is fungible, so which baht leave is a
  convention, and the world's is the gang's intent: a mule passing a payment on moves that
  payment's money first, then other stolen money, oldest first, then its own. A trace cannot
  know the intent; it takes reported money first, oldest first. The two part only where money
  of victims who have not reported yet is mixed in;
- **where it leaves the banking system.** Stolen money paid to anyone outside the gangs (a
  merchant selling goods, the exchange selling crypto) is theirs now, clean; cash withdrawn
  at an ATM and crypto withdrawn on-chain leave the world. Either way the lot ends, booked as
  cashed out by that route;
- **the path of every lot**: each transfer (and trade) it took from the victim, for saying why
  a trace did not follow it.

Balances and stolen amounts are kept as step functions of event time, so the scoring can ask
what sat where at the moment a report arrived, or when an institution executed an order.
Amounts are integer minor units, times epoch milliseconds, as in ``processors.records``.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

from processors.records import AccountKey

Holding = tuple[AccountKey, str]  # (account, currency)
GANG_ROLES = frozenset({"mule", "collector", "gang_crypto"})
INNOCENT_ROLES = frozenset({"person", "merchant", "employer", "exchange"})
OUTSIDE = "outside"  # on-chain addresses: money sent there has left the world


@dataclass(frozen=True, slots=True)
class Step:
    """One move of stolen money: a transfer on the feed, or a trade at the exchange (``txn_id`` empty)."""

    txn_id: str
    kind: str  # payment (the victim's), transfer, conversion
    source: AccountKey
    target: AccountKey
    at_ms: int
    currency: str  # what arrived at the target


@dataclass(slots=True)
class Lot:
    """A piece of one case's stolen money at one holding."""

    case: int
    amount: int  # minor units of the holding's currency
    thb: int  # what it is worth in THB minor units: what the victim lost
    path: tuple[Step, ...]


class Timeline:
    """An integer step function of time: ``at(t)`` is the last value set at or before ``t``, else 0."""

    __slots__ = ("times", "values")

    def __init__(self) -> None:
        self.times = array("q")
        self.values = array("q")

    def set(self, at_ms: int, value: int) -> None:
        if self.times and self.times[-1] == at_ms:
            self.values[-1] = value
        else:
            self.times.append(at_ms)
            self.values.append(value)

    def at(self, at_ms: int) -> int:
        index = bisect_right(self.times, at_ms) - 1
        return self.values[index] if index >= 0 else 0

    def lowest(self, start_ms: int, end_ms: int) -> int:
        """The smallest value taken anywhere in ``[start_ms, end_ms]``."""
        return min(self._taken(start_ms, end_ms))

    def highest(self, start_ms: int, end_ms: int) -> int:
        """The largest value taken anywhere in ``[start_ms, end_ms]``."""
        return max(self._taken(start_ms, end_ms))

    def _taken(self, start_ms: int, end_ms: int) -> list[int]:
        first, last = bisect_right(self.times, start_ms), bisect_right(self.times, end_ms)
        return [self.at(start_ms), *self.values[first:last]]


@dataclass(slots=True)
class _Stolen:
    """One case's money at one holding, now and over time."""

    amount: int = 0
    thb: int = 0
    amounts: Timeline = field(default_factory=Timeline)
    thbs: Timeline = field(default_factory=Timeline)


class LedgerError(Exception):
    """The world asked the ledger for something impossible (a bug in the world, not bad data)."""


class Ledger:
    def __init__(self) -> None:
        self.roles: dict[AccountKey, str] = {}
        self.opened: dict[str, int] = {}  # currency -> money the world started with
        self.left: dict[str, int] = {}  # currency -> money that left the world (cash, on-chain)
        self.converted: dict[str, int] = {}  # currency -> traded away (negative) or bought (positive)
        self.paid: dict[int, int] = {}  # case -> THB minor units the victim paid
        self.cashed_out: dict[int, dict[str, int]] = {}  # case -> route -> THB minor units
        self._clean: dict[Holding, int] = {}
        self._lots: dict[Holding, deque[Lot]] = {}
        self._balances: dict[Holding, Timeline] = {}
        self._stolen: dict[Holding, dict[int, _Stolen]] = {}
        self._where: dict[int, set[Holding]] = {}  # case -> holdings with its money now
        self._cash: dict[Holding, list[tuple[int, int]]] = {}  # (at_ms, case) of stolen money withdrawn in cash

    # -- the world books here --------------------------------------------------------------------

    def open(self, account: AccountKey, role: str, currency: str, amount: int, at_ms: int) -> None:
        """A new account, with ``amount`` of its owner's own money."""
        if role not in GANG_ROLES | INNOCENT_ROLES | {OUTSIDE}:
            raise LedgerError(f"unknown role {role!r}")
        self.roles[account] = role
        if amount:
            self.opened[currency] = self.opened.get(currency, 0) + amount
            self._credit_clean((account, currency), amount, at_ms)

    def balance(self, account: AccountKey, currency: str) -> int:
        holding = (account, currency)
        return self._clean.get(holding, 0) + sum(lot.amount for lot in self._lots.get(holding, ()))

    def transfer(
        self,
        txn_id: str,
        source: AccountKey,
        target: AccountKey,
        currency: str,
        amount: int,
        at_ms: int,
        *,
        theft_case: int | None = None,
        case: int | None = None,
    ) -> int:
        """Move up to ``amount`` (what the source holds caps it); returns what moved.

        ``theft_case`` marks a victim's payment: the clean money it moves arrives as that case's stolen money.
        ``case``: the gang is passing that case's money on, so it goes first.
        """
        if amount <= 0:
            return 0
        if theft_case is not None:
            moved = min(amount, self._clean.get((source, currency), 0))
            if moved:
                self._debit_clean((source, currency), moved, at_ms)
                self.paid[theft_case] = self.paid.get(theft_case, 0) + moved
                step = Step(txn_id, "payment", source, target, at_ms, currency)
                self._arrive(target, currency, [Lot(theft_case, moved, moved, (step,))], 0, at_ms)
            return moved
        lots, clean = self._draw((source, currency), amount, at_ms, case)
        step = Step(txn_id, "transfer", source, target, at_ms, currency)
        moving = [Lot(lot.case, lot.amount, lot.thb, (*lot.path, step)) for lot in lots]
        self._arrive(target, currency, moving, clean, at_ms)
        return clean + sum(lot.amount for lot in lots)

    def withdraw(
        self, source: AccountKey, currency: str, amount: int, at_ms: int, *, case: int | None = None, on_feed: bool
    ) -> int:
        """Cash taken out of the banking system at an ATM; returns what left. ``on_feed``: the bank reported it."""
        lots, clean = self._draw((source, currency), amount, at_ms, case)
        for lot in lots:
            self._cash_out(lot, "atm")
            if not on_feed:  # the trace cannot know this money left
                self._cash.setdefault((source, currency), []).append((at_ms, lot.case))
        moved = clean + sum(lot.amount for lot in lots)
        self.left[currency] = self.left.get(currency, 0) + moved
        return moved

    def convert(self, account: AccountKey, source: str, target: str, minor_per_minor: float, at_ms: int) -> int:
        """Trade everything the account holds in ``source`` for ``target`` (off the feed); returns what was bought.

        Stolen lots stay stolen, worth what the victims lost; the currency changes under them.
        """
        have = self.balance(account, source)
        if not have:
            return 0
        lots, clean = self._draw((account, source), have, at_ms)
        step = Step("", "conversion", account, account, at_ms, target)
        bought = [
            Lot(lot.case, int(lot.amount * minor_per_minor), lot.thb, (*lot.path, step))
            for lot in lots
            if int(lot.amount * minor_per_minor) > 0
        ]
        for lot in lots:
            if int(lot.amount * minor_per_minor) == 0:
                self._cash_out(lot, "rounding")
        clean_bought = int(clean * minor_per_minor)
        total = clean_bought + sum(lot.amount for lot in bought)
        self.converted[source] = self.converted.get(source, 0) - have
        self.converted[target] = self.converted.get(target, 0) + total
        self._arrive(account, target, bought, clean_bought, at_ms)
        return total

    # -- what the scoring asks -------------------------------------------------------------------

    def is_gang(self, account: AccountKey) -> bool:
        return self.roles.get(account) in GANG_ROLES

    def lots_of(self, case: int) -> list[tuple[Holding, Lot]]:
        """Where the case's stolen money is now, lot by lot, with the path each lot took."""
        return [
            (holding, Lot(lot.case, lot.amount, lot.thb, lot.path))
            for holding in sorted(self._where.get(case, ()))
            for lot in self._lots.get(holding, ())
            if lot.case == case
        ]

    def stolen_at(self, holding: Holding, case: int, at_ms: int) -> tuple[int, int]:
        """(amount, its THB worth) of the case's money at the holding at ``at_ms``."""
        stolen = self._stolen.get(holding, {}).get(case)
        if stolen is None:
            return 0, 0
        return stolen.amounts.at(at_ms), stolen.thbs.at(at_ms)

    def stolen_lowest(self, holding: Holding, case: int, start_ms: int, end_ms: int) -> int:
        """The least of the case's money at the holding at any moment in ``[start_ms, end_ms]``."""
        stolen = self._stolen.get(holding, {}).get(case)
        return 0 if stolen is None else stolen.amounts.lowest(start_ms, end_ms)

    def all_stolen_at(self, holding: Holding, at_ms: int) -> int:
        """Every case's money at the holding at ``at_ms``."""
        return sum(stolen.amounts.at(at_ms) for stolen in self._stolen.get(holding, {}).values())

    def others_present(
        self, holding: Holding, case: int, start_ms: int, end_ms: int, among: set[int] | None = None
    ) -> bool:
        """Whether another case's money (of ``among``, if given) was at the holding at some moment in the span."""
        return any(
            stolen.amounts.highest(start_ms, end_ms) > 0
            for other, stolen in self._stolen.get(holding, {}).items()
            if other != case and (among is None or other in among)
        )

    def cash_withdrawn(self, holding: Holding, before_ms: int, cases: set[int]) -> bool:
        """Whether money of any of ``cases`` left the holding in cash (off the feed) before ``before_ms``."""
        return any(at_ms < before_ms and case in cases for at_ms, case in self._cash.get(holding, ()))

    def cases_at(self, holding: Holding) -> list[int]:
        """Every case whose money was ever at the holding."""
        return list(self._stolen.get(holding, ()))

    def balance_at(self, holding: Holding, at_ms: int) -> int:
        timeline = self._balances.get(holding)
        return 0 if timeline is None else timeline.at(at_ms)

    def holdings(self) -> Iterator[Holding]:
        return iter(self._balances)

    def in_system(self, case: int) -> int:
        """THB worth of the case's money still at gang accounts."""
        return sum(self._stolen[holding][case].thb for holding in self._where.get(case, ()))

    # -- bookkeeping -----------------------------------------------------------------------------

    def _draw(self, holding: Holding, amount: int, at_ms: int, case: int | None = None) -> tuple[list[Lot], int]:
        """Take up to ``amount``: ``case``'s lots first, then other stolen lots, oldest first, then own money."""
        taken: list[Lot] = []
        left = amount
        queue = self._lots.get(holding)
        if queue and case is not None and any(lot.case == case for lot in queue):
            ordered = [lot for lot in queue if lot.case == case] + [lot for lot in queue if lot.case != case]
            queue = self._lots[holding] = deque(ordered)  # others keep their order behind
        while queue and left:
            lot = queue[0]
            if lot.amount <= left:
                queue.popleft()
                taken.append(lot)
                left -= lot.amount
            else:
                thb = lot.thb * left // lot.amount
                taken.append(Lot(lot.case, left, thb, lot.path))
                lot.amount -= left
                lot.thb -= thb
                left = 0
        if queue is not None and not queue:
            del self._lots[holding]
        clean = min(left, self._clean.get(holding, 0))
        if clean:
            self._clean[holding] -= clean
        for lot in taken:
            self._book_stolen(holding, lot.case, -lot.amount, -lot.thb, at_ms)
        self._balances.setdefault(holding, Timeline()).set(at_ms, self.balance(*holding))
        return taken, clean

    def _arrive(self, target: AccountKey, currency: str, lots: list[Lot], clean: int, at_ms: int) -> None:
        role = self.roles.get(target)
        if role is None:
            raise LedgerError(f"money sent to an account the world never opened: {target}")
        holding = (target, currency)
        if role == OUTSIDE:
            for lot in lots:
                self._cash_out(lot, "on-chain")
            self.left[currency] = self.left.get(currency, 0) + clean + sum(lot.amount for lot in lots)
            return
        if role in INNOCENT_ROLES:
            # Sold goods or crypto for it: the money is the recipient's now, and the victim's is gone.
            for lot in lots:
                self._cash_out(lot, role)
            self._credit_clean(holding, clean + sum(lot.amount for lot in lots), at_ms)
            return
        queue = self._lots.setdefault(holding, deque())
        for lot in lots:
            queue.append(lot)
            self._book_stolen(holding, lot.case, lot.amount, lot.thb, at_ms)
        if not queue:
            del self._lots[holding]
        if clean:
            self._clean[holding] = self._clean.get(holding, 0) + clean
        self._balances.setdefault(holding, Timeline()).set(at_ms, self.balance(*holding))

    def _credit_clean(self, holding: Holding, amount: int, at_ms: int) -> None:
        self._clean[holding] = self._clean.get(holding, 0) + amount
        self._balances.setdefault(holding, Timeline()).set(at_ms, self.balance(*holding))

    def _debit_clean(self, holding: Holding, amount: int, at_ms: int) -> None:
        self._clean[holding] -= amount
        self._balances[holding].set(at_ms, self.balance(*holding))

    def _book_stolen(self, holding: Holding, case: int, amount: int, thb: int, at_ms: int) -> None:
        stolen = self._stolen.setdefault(holding, {}).get(case)
        if stolen is None:
            stolen = self._stolen[holding][case] = _Stolen()
        stolen.amount += amount
        stolen.thb += thb
        stolen.amounts.set(at_ms, stolen.amount)
        stolen.thbs.set(at_ms, stolen.thb)
        if stolen.amount:
            self._where.setdefault(case, set()).add(holding)
        else:
            self._where.get(case, set()).discard(holding)

    def _cash_out(self, lot: Lot, route: str) -> None:
        routes = self.cashed_out.setdefault(lot.case, {})
        routes[route] = routes.get(route, 0) + lot.thb
