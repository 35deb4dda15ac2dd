"""Bench (n), the floor under (a), does all the work it claims: every transfer stored once, through the broker."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import msgspec
import pytest
from kafka_client import read_raw
from rocksdict import Options, Rdict

from connectors.synthetic_feed import bulk_bank_transactions
from pipeline.bench_baselines import fill_topic
from pipeline.bench_floor import measure_keyed_floor
from pipeline.errors import InterceptorError
from pipeline.settings import Settings
from pipeline.topics import BANK_TRANSACTIONS

pytestmark = pytest.mark.integration

TRANSACTIONS = 3_000
REDELIVERED = 400


@pytest.mark.parametrize("checked", [True, False], ids=["contract decode", "shape only"])
async def test_the_floor_loop_stores_each_transfer_once_under_its_account_and_logs_every_row(
    settings: Settings, tmp_path: Path, checked: bool
) -> None:
    bootstrap, topic = settings.bootstrap_servers or "", settings.topic(BANK_TRANSACTIONS)
    feed = list(bulk_bank_transactions(TRANSACTIONS, 1, int(time.time() * 1000) - 3600_000))
    await fill_topic(bootstrap, topic, itertools.chain(feed, feed[:REDELIVERED]))

    run = await measure_keyed_floor(bootstrap, topic, TRANSACTIONS + REDELIVERED, tmp_path, checked=checked)

    assert (run.stored, run.refused) == (TRANSACTIONS, REDELIVERED)
    assert run.changelog_rows == 2 * TRANSACTIONS  # the account's row and the txn_id's
    options = Options(raw_mode=True)
    db = Rdict(str(run.store), options)
    try:
        by_account = [key for key, _ in db.items(from_key=b"T") if key.startswith(b"T")]
        by_id = {key for key, _ in db.items(from_key=b"I") if key.startswith(b"I")}
    finally:
        db.close()
    assert len(by_account) == TRANSACTIONS
    assert {key.rsplit(b"\x00", 1)[1] for key in by_account} == by_id  # each account row ends with its txn_id's key
    assert len(by_id) == TRANSACTIONS
    messages = await read_raw(bootstrap, run.changelog)
    logged = [tuple(row) for message in messages for row in msgspec.msgpack.decode(message)]
    assert len(logged) == 2 * TRANSACTIONS
    assert {key for key, _ in logged} == {*by_account, *by_id}


@pytest.mark.parametrize("checked", [True, False], ids=["contract decode", "shape only"])
async def test_the_floor_loop_refuses_to_time_a_feed_its_decode_rejects(
    settings: Settings, tmp_path: Path, checked: bool
) -> None:
    bootstrap, topic = settings.bootstrap_servers or "", settings.topic(BANK_TRANSACTIONS)
    feed = list(bulk_bank_transactions(100, 1, int(time.time() * 1000) - 3600_000))
    await fill_topic(bootstrap, topic, [b'{"txn_id": "broken"}', *feed])  # first: read before the loop can end

    with pytest.raises(InterceptorError, match="refused 1 records"):
        await measure_keyed_floor(bootstrap, topic, 100, tmp_path, checked=checked)
