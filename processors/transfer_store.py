"""Where the money trail keeps bank transfers, behind two small interfaces.

The trail's logic never cares where transfers live. In one process with nothing to
persist, plain dicts and lists (here) are fastest; a worker that must restart in
seconds with tens of millions of transfers keeps them on disk instead
(``pipeline.trail_store``, RocksDB) and only the traced cases in memory.

- ``FeedStore``: a resolver partition's bank-feed record per txn_id, and the feed's clock.
- ``AccountTransfers``: an account partition's transfers out of (or into) each account.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Literal, Protocol

from processors.records import AccountKey

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
        self._by_account: dict[AccountKey, list[Record]] = {}

    def scan(self, account: AccountKey) -> Iterator[Record]:
        return iter(self._by_account.get(account, ()))

    def record(self, account: AccountKey, txn_id: str) -> Record | None:
        return next((known for known in self._by_account.get(account, ()) if known[5] == txn_id), None)

    def put(self, account: AccountKey, txn_id: str, record: Record | None, new: bool) -> None:
        records = self._by_account.get(account)
        if records is None:
            if record is not None:
                self._by_account[account] = [record]
            return
        if new and record is not None:
            records.append(record)  # the hot path: a bank transfer nobody has claimed
            return
        for index, known in enumerate(records):
            if known[5] == txn_id:
                if record is None:
                    del records[index]
                else:
                    records[index] = record
                break
        else:
            if record is not None:
                records.append(record)
        if not records:
            del self._by_account[account]

    def evict(self, cutoff_ms: int, kept: Callable[[AccountKey], bool]) -> int:
        gone = 0
        for account, records in list(self._by_account.items()):
            if kept(account):
                continue
            left = [record for record in records if record[0] >= cutoff_ms]
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
