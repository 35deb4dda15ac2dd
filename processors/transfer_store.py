"""Where the money trail keeps bank transfers, behind two small interfaces.

The trail's logic never cares where transfers live. In one process with nothing to
persist, plain dicts and lists (here) are fastest; a worker that must restart in
seconds with tens of millions of transfers keeps them on disk instead
(``pipeline.trail_store``, RocksDB) and only the traced cases in memory.

- ``FeedStore``: a resolver partition's bank-feed record per txn_id, and the feed's clock.
- ``AccountTransfers``: an account partition's transfers out of (or into) each account.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Literal, Protocol

from processors.records import AccountKey

if TYPE_CHECKING:
    from processors.money_trail import Flow, Lot

# The effective record of a transfer: (at_ms, source, target, amount, currency, txn_id, named by a report).
Record = tuple[int, AccountKey, AccountKey, int, str, str, bool]
Direction = Literal["out", "in"]
NEVER = -(1 << 62)


class FeedStore(Protocol):
    """A resolver partition's feed records by txn_id, and its clock (the latest ``at_ms`` indexed)."""

    watermark_ms: int
    forgotten_before_ms: int  # records older than this were evicted, and are not indexed again

    def __len__(self) -> int: ...
    def get(self, txn_id: str) -> Record | None: ...
    def put(self, txn_id: str, record: Record) -> None: ...
    def evict(self, cutoff_ms: int, claimed: Callable[[str], bool]) -> int:
        """Forget records older than ``cutoff_ms`` that no report ``claimed``; how many went."""
        ...


class AccountTransfers(Protocol):
    """One direction of an account partition's transfers: each account's records, by txn_id."""

    def scan(self, account: AccountKey) -> Iterator[Record]:
        """The account's records one by one, so a caller that has seen enough stops reading (a hub's millions)."""
        ...

    def record(self, account: AccountKey, txn_id: str) -> Record | None:
        """The account's record of ``txn_id``, without reading the others."""
        ...

    def put(self, account: AccountKey, txn_id: str, record: Record | None, new: bool) -> None:
        """Set (or drop, with None) the account's record of ``txn_id``; ``new``: it cannot be there yet."""
        ...

    def evict(self, cutoff_ms: int, kept: Callable[[AccountKey], bool]) -> int:
        """Forget records older than ``cutoff_ms`` of accounts not ``kept``; how many went."""
        ...


class TransferStores(Protocol):
    """Makes the stores of each partition, and remembers every account seen (once each)."""

    def feed(self, partition: int) -> FeedStore: ...
    def transfers(self, partition: int, direction: Direction) -> AccountTransfers: ...
    def remember_account(self, account: AccountKey) -> None: ...
    def accounts(self) -> Iterable[AccountKey]:
        """Every account remembered before this process started (for a restart's rebuild)."""
        ...

    def traced(self, partition: int) -> TracedStore | None:
        """Where the partition's traced state is kept, or None where the trail rebuilds it by replaying reports."""
        ...


TracedState = tuple[
    dict[str, dict[str, Record]],  # resolver: txn_id -> report_id -> a report's copy
    dict[str, tuple[Record, frozenset[str]]],  # resolver: what the accounts were last told, claimed transfers only
    dict[str, tuple[AccountKey, frozenset[str]]],  # accounts: reported transfers out -> (source, reports naming them)
    dict[AccountKey, dict["Flow", tuple["Lot", ...]]],  # accounts: the tainted money arriving, per receiving account
]


class TracedStore(Protocol):
    """A partition's traced state in a worker's store: loaded when the partition is opened, logged as it changes."""

    def load(self) -> TracedState: ...

    # the TracedLog the trail writes to
    def copies(self, txn_id: str, copies: Mapping[str, Record] | None) -> None: ...
    def told(self, txn_id: str, told: tuple[Record, frozenset[str]] | None) -> None: ...
    def named(self, txn_id: str, named: tuple[AccountKey, frozenset[str]] | None) -> None: ...
    def arriving(self, target: AccountKey, flow: Flow, content: tuple[Lot, ...] | None) -> None: ...


class MemoryFeed(dict[str, Record]):
    def __init__(self) -> None:
        super().__init__()
        self.watermark_ms = 0
        self.forgotten_before_ms = NEVER

    def put(self, txn_id: str, record: Record) -> None:
        self[txn_id] = record

    def evict(self, cutoff_ms: int, claimed: Callable[[str], bool]) -> int:
        gone = [txn_id for txn_id, record in self.items() if record[0] < cutoff_ms and not claimed(txn_id)]
        for txn_id in gone:
            del self[txn_id]
        return len(gone)


class MemoryAccountTransfers:
    def __init__(self) -> None:
        self._by_account: dict[AccountKey, dict[str, Record]] = {}

    def scan(self, account: AccountKey) -> Iterator[Record]:
        return iter(self._by_account.get(account, {}).values())

    def record(self, account: AccountKey, txn_id: str) -> Record | None:
        return self._by_account.get(account, {}).get(txn_id)

    def put(self, account: AccountKey, txn_id: str, record: Record | None, new: bool) -> None:
        # Keyed by txn_id even when ``new``: a transfer sent again after a crash is kept once.
        records = self._by_account.get(account)
        if record is None:
            if records is not None and records.pop(txn_id, None) is not None and not records:
                del self._by_account[account]
        elif records is None:
            self._by_account[account] = {txn_id: record}
        else:
            records[txn_id] = record

    def evict(self, cutoff_ms: int, kept: Callable[[AccountKey], bool]) -> int:
        gone = 0
        for account, records in list(self._by_account.items()):
            if kept(account):
                continue
            left = {txn_id: record for txn_id, record in records.items() if record[0] >= cutoff_ms}
            gone += len(records) - len(left)
            if left:
                self._by_account[account] = left
            else:
                del self._by_account[account]
        return gone


class MemoryStores:
    """Everything in this process's memory: lost on exit, rebuilt by replaying the inputs."""

    def feed(self, partition: int) -> FeedStore:
        return MemoryFeed()

    def transfers(self, partition: int, direction: Direction) -> AccountTransfers:
        return MemoryAccountTransfers()

    def remember_account(self, account: AccountKey) -> None:
        pass

    def accounts(self) -> Iterable[AccountKey]:
        return ()

    def traced(self, partition: int) -> TracedStore | None:
        return None  # the trail's own dicts are the state
