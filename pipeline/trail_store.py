"""The money trail's transfers on local disk (RocksDB), so memory and restart time stop growing with the feed.

Only traced cases live in memory; every bank transfer is a few RocksDB rows. A batch's
writes are buffered here (reads see them) and written at the checkpoint in one
atomic write batch, together with the input offsets they reflect, so the store is
always exactly the state after some committed batch. The same rows go to the
store's changelog topic first, so a lost disk is restored from the changelog,
never from the input history.

Key layout (one byte of kind, one of partition, then big-endian sortable fields):
  F p txn_id                    -> record          the feed's record of a txn_id
  f p at seq                    -> [txn_id]        the feed's time index: a row per checkpoint (per
                                                   2,000 entries), under the latest ``at`` among them
  O p label \\0 txn_id          -> record          an account's transfers out (I: in)
  o p at seq                    -> [(row, account)] their time index, the same way (i: in)
  A label                       -> account         every account seen
  M ...                         -> meta            feed clocks, input offsets, the index sequences
With ``keep_traced`` (a trail partition must move between workers with what only traced cases
have, not be rebuilt by replaying reports), also:
  C p txn_id                    -> {report_id: record}   report copies of a transfer
  T p txn_id                    -> (record, reports)     what the accounts were last told of a claimed transfer
  N p txn_id                    -> (source, reports)     a reported transfer out of an account of the partition
  W p label \0 txn_id \0 source -> (target, flow, lots)  tainted money arriving at an account
Every row but ``A`` and the input offsets belongs to one partition (``partition_of_row``), so a
partition's rows can follow it to another worker.
A checkpoint's index row is evicted once its latest record is past the cutoff, so a record
can outlive the history retention by as long as its checkpoint spans: never shorter.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import msgspec
import orjson
from rocksdict import BlockBasedOptions, Options, Rdict, WriteBatch

from processors.money_trail import Flow, Lot
from processors.records import AccountKey, account_label
from processors.transfer_store import NEVER, Direction, Record, TracedState

Change = tuple[bytes, bytes | None]  # a row and its new value (None: deleted)
Encoded = dict[int, tuple[Record, bytes]]  # id(record) -> (record, its encoding): a new transfer's rows share one

_encode = msgspec.msgpack.Encoder().encode
_Account = tuple[str, str, str]
_Record = tuple[int, _Account, _Account, int, str, str, bool]
_decode_record = msgspec.msgpack.Decoder(_Record).decode
_decode_account = msgspec.msgpack.Decoder(tuple[str, str, str]).decode
_decode_clock = msgspec.msgpack.Decoder(tuple[int, int, int]).decode
_decode_txn_ids = msgspec.msgpack.Decoder(list[str]).decode
_decode_rows = msgspec.msgpack.Decoder(list[tuple[bytes, _Account]]).decode
_SEQUENCE = b"Msequence"
_INDEX_ROW_ENTRIES = 2_000  # an account index entry is about 60 bytes: about 120 kB a row
_BIAS = 1 << 63  # signed event times sort as unsigned big-endian
_OFFSETS = b"Moffsets"
_CHANGELOG = b"Mchangelog"  # local only: never logged itself
_MISSING = b"\xff missing"  # no value is ever this: records and accounts are msgpack arrays


def _at(ms: int) -> bytes:
    return struct.pack(">Q", ms + _BIAS)


_PARTITION_ROWS = b"FfOoIiCTNW"  # row kinds whose second byte is the partition


def partition_of_row(key: bytes) -> int | None:
    """The partition a row belongs to, or None for the rows of the whole store (accounts, input offsets)."""
    if key[:1] and key[0] in _PARTITION_ROWS:
        return key[1]
    if key.startswith((b"Mclock", _SEQUENCE)) and len(key) in (len(b"Mclock") + 1, len(_SEQUENCE) + 1):
        return key[-1]
    return None


class RocksStores:
    """One RocksDB holding every partition's transfers; the ``TransferStores`` of a durable worker."""

    def __init__(self, path: Path, recheck_ms: int, keep_traced: bool = False) -> None:
        path.mkdir(parents=True, exist_ok=True)
        options = Options(raw_mode=True)
        options.create_if_missing(True)
        table = BlockBasedOptions()
        table.set_bloom_filter(10, False)  # most feed lookups are for txn_ids not seen before
        options.set_block_based_table_factory(table)
        self.path = path
        self.db = Rdict(str(path), options)
        self.recheck_ms = recheck_ms  # kept evidence is looked at (and re-logged) again this much later
        self._writes: dict[bytes, bytes | None] = {}  # this batch's rows, not yet in the db
        self._feeds: dict[int, RocksFeed] = {}
        self._transfers: dict[tuple[int, Direction], RocksAccountTransfers] = {}
        self._staged: list[Change] = []
        self._sequences: dict[bytes, int] = {}  # per partition, read when first needed: after a restore
        self.keep_traced = keep_traced

    @classmethod
    def for_history(cls, path: Path, history_retention_ms: int, keep_traced: bool = False) -> RocksStores:
        """A worker's store: kept evidence is looked at, and logged, again every half history retention, so the
        changelog, which forgets by age, keeps a recent copy of it."""
        return cls(path, history_retention_ms // 2, keep_traced)

    def index_key(self, prefix: bytes, at_ms: int) -> bytes:
        """A new time-index row's key: unique within its partition, and ordered by ``at_ms``."""
        row = _SEQUENCE + prefix[1:2]  # one per partition: its rows move between workers with it
        sequence = self._sequences.get(row)
        if sequence is None:
            raw = self.get(row) or self.get(_SEQUENCE)  # a store from before sequences per partition goes on from there
            sequence = 0 if raw is None else int(msgspec.msgpack.decode(raw))
        self._sequences[row] = sequence = sequence + 1
        self._writes[row] = _encode(sequence)
        return prefix + _at(at_ms) + struct.pack(">Q", sequence)

    def index_rows(self, prefix: bytes, entries: Sequence[object], latest_ms: int) -> list[Change]:
        """Time-index rows for entries, a few thousand a row: each stays far below a message's size limit."""
        return [
            (self.index_key(prefix, latest_ms), _encode(entries[start : start + _INDEX_ROW_ENTRIES]))
            for start in range(0, len(entries), _INDEX_ROW_ENTRIES)
        ]

    # -- TransferStores ----------------------------------------------------------------------------

    def feed(self, partition: int) -> RocksFeed:
        feed = self._feeds[partition] = RocksFeed(self, partition)
        return feed

    def transfers(self, partition: int, direction: Direction) -> RocksAccountTransfers:
        transfers = self._transfers[(partition, direction)] = RocksAccountTransfers(self, partition, direction)
        return transfers

    def remember_account(self, account: AccountKey) -> None:
        self._writes[b"A" + account_label(account).encode()] = _encode(account)

    def accounts(self) -> Iterable[AccountKey]:
        return (_decode_account(value) for _, value in self.scan(b"A"))

    def traced(self, partition: int) -> RocksTraced | None:
        return RocksTraced(self, partition) if self.keep_traced else None

    def drop_partition(self, partition: int) -> None:
        """Delete every row of a partition (before restoring it from its changelog), this batch's too."""
        tag = bytes([partition])
        batch = WriteBatch(raw_mode=True)
        for kind in _PARTITION_ROWS:
            batch.delete_range(bytes([kind]) + tag, bytes([kind]) + bytes([partition + 1]))
        for key in (b"Mclock" + tag, _SEQUENCE + tag, _CHANGELOG + tag):
            batch.delete(key)
        self.db.write(batch)
        self._writes = {key: value for key, value in self._writes.items() if partition_of_row(key) != partition}
        self.forget_cached(partition)

    def forget_cached(self, partition: int) -> None:
        """Forget what is cached of a partition's rows: its changelog's rows were just written under this store."""
        self._sequences.pop(_SEQUENCE + bytes([partition]), None)
        self._feeds.pop(partition, None)
        for direction in ("out", "in"):
            self._transfers.pop((partition, direction), None)

    # -- reads that see this batch's writes ---------------------------------------------------------

    def get(self, key: bytes) -> bytes | None:
        value = self._writes.get(key, _MISSING)
        if value is _MISSING:
            return self.db.get(key)
        return value

    def scan(self, prefix: bytes, stop: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        """Rows of the db under ``prefix`` (and below ``stop``), in key order; this batch's writes are not included."""
        it = self.db.iter()
        it.seek(prefix)
        while it.valid():
            key = it.key()
            if not key.startswith(prefix) or (stop is not None and key >= stop):
                return
            yield key, it.value()
            it.next()

    def put(self, key: bytes, value: bytes | None) -> None:
        self._writes[key] = value

    # -- the checkpoint ----------------------------------------------------------------------------

    def offsets(self) -> dict[tuple[str, int], int]:
        """The input offsets the store reflects: (topic, partition) -> next offset to read."""
        raw = self.get(_OFFSETS)
        return {} if raw is None else {(topic, int(p)): offset for topic, p, offset in orjson.loads(raw)}

    def stage(self, offsets: dict[tuple[str, int], int]) -> list[Change]:
        """Close the batch: its rows, with the offsets they reflect, for the changelog and then ``flush``.

        Rows written directly (index upkeep, accounts, clocks) go first: a record the batch wrote later wins.
        """
        merged = {**self.offsets(), **offsets}
        self._writes[_OFFSETS] = orjson.dumps([[topic, p, offset] for (topic, p), offset in sorted(merged.items())])
        rows = self._staged
        rows.extend(self._writes.items())
        self._writes = {}
        encoded: Encoded = {}
        for feed in self._feeds.values():
            feed.stage(rows, encoded)
        for transfers in self._transfers.values():
            transfers.stage(rows, encoded)
        rows.extend(self._writes.items())  # the index sequence those rows advanced
        self._writes = {}
        return rows

    def flush(self, changelog_offset: int | None, partition_offsets: Mapping[int, int] | None = None) -> None:
        """Write the staged rows in one atomic batch (after the changelog has them and offsets are committed).

        ``partition_offsets``: with a changelog per trail partition, how far each partition's now reaches.
        """
        if changelog_offset is not None:
            self._staged.append((_CHANGELOG, _encode(changelog_offset)))
        for partition, offset in (partition_offsets or {}).items():
            self._staged.append((_CHANGELOG + bytes([partition]), _encode(offset)))
        self.apply(self._staged)
        self._staged = []

    def partition_changelog_offset(self, partition: int) -> int | None:
        """How much of a trail partition's own changelog the store reflects (None: it holds none of it)."""
        raw = self.db.get(_CHANGELOG + bytes([partition]))
        return None if raw is None else int(msgspec.msgpack.decode(raw))

    def mark_partition_changelog(self, partition: int, offset: int) -> None:
        self.db.put(_CHANGELOG + bytes([partition]), _encode(offset))

    def changelog_offset(self) -> int:
        """How much of the changelog the store reflects: the offset of the next message to apply."""
        raw = self.db.get(_CHANGELOG)
        return 0 if raw is None else int(msgspec.msgpack.decode(raw))

    def mark_changelog(self, offset: int) -> None:
        self.db.put(_CHANGELOG, _encode(offset))

    def apply(self, changes: Iterable[Change]) -> None:
        """Write rows as they are: a checkpoint's, or a changelog's during a restore."""
        batch = WriteBatch(raw_mode=True)
        for key, value in changes:
            if value is None:
                batch.delete(key)
            else:
                batch.put(key, value)
        self.db.write(batch)

    def disk_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.path.iterdir() if f.is_file())

    def close(self) -> None:
        self.db.close()

    @staticmethod
    def wipe(path: Path) -> None:
        """Delete a store (one from another cluster, or a broker that lost its topics)."""
        Rdict.destroy(str(path))


class RocksFeed:
    """A resolver partition's feed records by txn_id, with a time index for eviction."""

    def __init__(self, stores: RocksStores, partition: int) -> None:
        self._stores = stores
        self._tag = bytes([partition])
        self._clock_key = b"Mclock" + self._tag
        raw = stores.get(self._clock_key)
        self.watermark_ms, self.forgotten_before_ms, self._count = (0, NEVER, 0) if raw is None else _decode_clock(raw)
        self._new: dict[str, Record | None] = {}  # this batch's (None: evicted); encoded at the checkpoint

    def __len__(self) -> int:
        return self._count + sum(1 for record in self._new.values() if record is not None)

    def get(self, txn_id: str) -> Record | None:
        if txn_id in self._new:
            return self._new[txn_id]
        raw = self._stores.get(b"F" + self._tag + txn_id.encode())
        return None if raw is None else _decode_record(raw)

    def put(self, txn_id: str, record: Record) -> None:
        self._new[txn_id] = record

    def evict(self, cutoff_ms: int, claimed: Callable[[str], bool]) -> int:
        """Forget unclaimed records older than ``cutoff_ms`` (those already on disk; this batch's wait a pass)."""
        stores, prefix = self._stores, b"f" + self._tag
        gone, kept = 0, []
        for key, value in list(stores.scan(prefix, stop=prefix + _at(cutoff_ms))):
            stores.put(key, None)
            for txn_id in _decode_txn_ids(value):
                if txn_id in self._new:
                    continue
                if not claimed(txn_id):
                    self._new[txn_id] = None
                    self._count -= 1
                    gone += 1
                else:  # a report still names it: look again later, and log it again so the changelog keeps it
                    row = b"F" + self._tag + txn_id.encode()
                    stores.put(row, stores.get(row))
                    kept.append(txn_id)
        for key, value in stores.index_rows(prefix, kept, cutoff_ms + stores.recheck_ms):
            stores.put(key, value)
        return gone

    def stage(self, rows: list[Change], encoded: Encoded) -> None:
        tag = self._tag
        indexed: list[str] = []
        latest = NEVER
        for txn_id, record in self._new.items():
            key = b"F" + tag + txn_id.encode()
            if record is None:
                rows.append((key, None))
                continue
            value = _encode(record)
            encoded[id(record)] = (record, value)
            rows.append((key, value))
            indexed.append(txn_id)
            if record[0] > latest:
                latest = record[0]
        rows.extend(self._stores.index_rows(b"f" + tag, indexed, latest))
        self._count += len(indexed)
        self._new = {}
        rows.append((self._clock_key, _encode((self.watermark_ms, self.forgotten_before_ms, self._count))))


class RocksAccountTransfers:
    """One direction of an account partition's transfers: rows keyed by account, then txn_id."""

    def __init__(self, stores: RocksStores, partition: int, direction: Direction) -> None:
        self._stores = stores
        tag = bytes([partition])
        self._rows = (b"O" if direction == "out" else b"I") + tag
        self._index = (b"o" if direction == "out" else b"i") + tag
        self._changed: dict[AccountKey, dict[str, Record | None]] = {}  # this batch's, by account

    def _prefix(self, account: AccountKey) -> bytes:
        return self._rows + account_label(account).encode() + b"\x00"

    def scan(self, account: AccountKey) -> Iterator[Record]:
        changed = self._changed.get(account) or {}
        yield from (record for record in changed.values() if record is not None)
        prefix = self._prefix(account)
        for key, value in self._stores.scan(prefix):
            if key[len(prefix) :].decode() not in changed:
                yield _decode_record(value)

    def record(self, account: AccountKey, txn_id: str) -> Record | None:
        changed = self._changed.get(account)
        if changed is not None and txn_id in changed:
            return changed[txn_id]
        raw = self._stores.db.get(self._prefix(account) + txn_id.encode())
        return None if raw is None else _decode_record(raw)

    def put(self, account: AccountKey, txn_id: str, record: Record | None, new: bool) -> None:
        changed = self._changed.get(account)
        if changed is None:
            changed = self._changed[account] = {}
        changed[txn_id] = record

    def evict(self, cutoff_ms: int, kept: Callable[[AccountKey], bool]) -> int:
        """Forget records older than ``cutoff_ms`` of accounts not ``kept`` (on disk; this batch's wait a pass)."""
        stores = self._stores
        gone, relogged = 0, []
        for key, value in list(stores.scan(self._index, stop=self._index + _at(cutoff_ms))):
            stores.put(key, None)
            for row, account in _decode_rows(value):
                raw = stores.db.get(row)
                if raw is None or _decode_record(raw)[0] >= cutoff_ms:
                    continue  # dropped or replaced since: a newer index row covers it
                txn_id = row[len(self._prefix(account)) :].decode()
                if txn_id in self._changed.get(account, ()):
                    continue  # rewritten in this batch: its own index row follows
                if kept(account):
                    # Evidence of a traced account: look again later, and log it again so the changelog keeps it.
                    stores.put(row, raw)
                    relogged.append((row, account))
                else:
                    self._changed.setdefault(account, {})[txn_id] = None
                    gone += 1
        for key, value in stores.index_rows(self._index, relogged, cutoff_ms + stores.recheck_ms):
            stores.put(key, value)
        return gone

    def stage(self, rows: list[Change], encoded: Encoded) -> None:
        indexed: list[tuple[bytes, AccountKey]] = []
        latest = NEVER
        for account, changed in self._changed.items():
            prefix = self._prefix(account)
            for txn_id, record in changed.items():
                row = prefix + txn_id.encode()
                if record is None:
                    rows.append((row, None))
                    continue
                known = encoded.get(id(record))
                if known is not None and known[0] is record:
                    value = known[1]
                else:
                    value = _encode(record)
                    encoded[id(record)] = (record, value)
                rows.append((row, value))
                indexed.append((row, account))
                if record[0] > latest:
                    latest = record[0]
        rows.extend(self._stores.index_rows(self._index, indexed, latest))
        self._changed = {}


_Lot = tuple[int, frozenset[str], tuple[tuple[str, int, _Account, _Account, int, str, int], ...]]
_decode_copies = msgspec.msgpack.Decoder(dict[str, _Record]).decode
_decode_told = msgspec.msgpack.Decoder(tuple[_Record, frozenset[str]]).decode
_decode_named = msgspec.msgpack.Decoder(tuple[_Account, frozenset[str]]).decode
_decode_arriving = msgspec.msgpack.Decoder(tuple[_Account, tuple[str, _Account], tuple[_Lot, ...]]).decode


class RocksTraced:
    """A partition's traced state as rows: written with the batch that changed it, read when the partition opens."""

    def __init__(self, stores: RocksStores, partition: int) -> None:
        self._stores = stores
        tag = bytes([partition])
        self._copies, self._told, self._named, self._arriving = b"C" + tag, b"T" + tag, b"N" + tag, b"W" + tag

    def load(self) -> TracedState:
        scan = self._stores.scan
        copies = {key[2:].decode(): _decode_copies(value) for key, value in scan(self._copies)}
        told = {key[2:].decode(): _decode_told(value) for key, value in scan(self._told)}
        named = {key[2:].decode(): _decode_named(value) for key, value in scan(self._named)}
        arriving: dict[AccountKey, dict[Flow, tuple[Lot, ...]]] = {}
        for _, value in scan(self._arriving):
            target, flow, content = _decode_arriving(value)
            arriving.setdefault(target, {})[flow] = content
        return copies, told, named, arriving

    def copies(self, txn_id: str, copies: Mapping[str, Record] | None) -> None:
        self._stores.put(self._copies + txn_id.encode(), None if not copies else _encode(copies))

    def told(self, txn_id: str, told: tuple[Record, frozenset[str]] | None) -> None:
        self._stores.put(self._told + txn_id.encode(), None if told is None else _encode(told))

    def named(self, txn_id: str, named: tuple[AccountKey, frozenset[str]] | None) -> None:
        self._stores.put(self._named + txn_id.encode(), None if named is None else _encode(named))

    def arriving(self, target: AccountKey, flow: Flow, content: tuple[Lot, ...] | None) -> None:
        txn_id, source = flow
        key = self._arriving + b"\x00".join(
            (account_label(target).encode(), txn_id.encode(), account_label(source).encode())
        )
        self._stores.put(key, None if content is None else _encode((target, flow, content)))
