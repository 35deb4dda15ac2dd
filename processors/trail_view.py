"""The money trail as the case role sees it when the trail's partitions run in other processes.

Reports' claims go out as messages to the resolvers' partitions (``take_outbox``), as a
``MoneyTrail`` owning no partition sends them. The holdings come back from the processes
that own the account partitions (``receive_holdings``), and ``retrace`` returns what changed
since it was last asked, as the in-process trail does, so the freeze book and the action
book above it are the same code either way.
"""

from __future__ import annotations

from collections.abc import Iterable

from processors.money_trail import Holding, HoldingTrace, Message, MoneyTrail, TraceSettings
from processors.records import AccountKey, Report, Transfer


class TrailView:
    def __init__(self, settings: TraceSettings, partitions: int) -> None:
        self._claims = MoneyTrail(settings, partitions, owned=())
        self._holdings: dict[Holding, HoldingTrace] = {}
        self._changed: dict[Holding, HoldingTrace | None] = {}
        self._accounts_heard: list[AccountKey] = []

    @property
    def reports(self) -> dict[str, Report]:
        return self._claims.reports

    def __len__(self) -> int:
        return 0  # the trail's processes index the bank feed, not this one

    def add_report(self, report: Report) -> bool:
        return self._claims.add_report(report)

    def forget_reports(self, report_ids: Iterable[str]) -> int:
        return self._claims.forget_reports(report_ids)

    def add_transaction(self, transfer: Transfer) -> bool:
        return self._claims.add_transaction(transfer)  # to the outbox: its resolver is elsewhere

    def take_outbox(self) -> dict[int, list[Message]]:
        return self._claims.take_outbox()

    def partition_of_account(self, account: AccountKey) -> int:
        return self._claims.partition_of_account(account)

    def receive_holdings(
        self,
        partition: int,
        reset: bool,
        changes: Iterable[tuple[Holding, HoldingTrace | None]],
        accounts: Iterable[AccountKey] = (),
    ) -> None:
        """A trail partition's changed holdings, in the order its owners published them.

        ``reset``: the partition was just adopted (a handover, or a crash), and what its earlier
        owner published is void; the changes that come with it are all of its holdings.
        ``accounts``: the partition's accounts the bank feed showed for the first time (for payment-proxy links).
        """
        self._accounts_heard.extend(accounts)
        if reset:
            for holding in [h for h in self._holdings if self.partition_of_account(h[0]) == partition]:
                del self._holdings[holding]
                self._changed[holding] = None
        for holding, trace in changes:
            if trace is not None:
                self._holdings[holding] = self._changed[holding] = trace
            elif self._holdings.pop(holding, None) is not None:
                self._changed[holding] = None

    def retrace(self) -> dict[Holding, HoldingTrace | None]:
        """Every holding whose trace changed since the last call, with None for holdings no longer reached."""
        changed, self._changed = self._changed, {}
        return changed

    def drain_new_accounts(self) -> list[AccountKey]:
        """The accounts the reports named and the trail's processes saw, since the last call."""
        heard, self._accounts_heard = self._accounts_heard, []
        return [*self._claims.drain_new_accounts(), *heard]

    def evict(self) -> int:
        return 0  # each trail process evicts its own partitions' transfers

    def holding(self, holding: Holding) -> HoldingTrace | None:
        return self._holdings.get(holding)

    def holdings(self) -> dict[Holding, HoldingTrace]:
        return dict(self._holdings)
