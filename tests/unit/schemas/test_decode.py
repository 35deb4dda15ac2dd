"""Raw bytes to Transfer / Report, and every kind of bad input to a Rejection a partner can act on."""

from __future__ import annotations

from dataclasses import replace

import pytest
from wire_corpus import (
    BAD_REPORTS,
    BAD_TRANSACTIONS,
    GOOD_AMOUNTS,
    KBANK,
    bank_transaction,
    encoded,
    release_request,
    reported_transfer,
    victim_report,
)

from processors.records import ReleaseRequest, Report, Transfer
from schemas.decode import Rejection, decode_bank_transaction, decode_release_request, decode_victim_report

MAX_BYTES = 64 * 1024
RECEIVED_AT_MS = 1_795_413_600_000  # 2026-11-23T06:00:00Z
SENT_AT_MS = 1_795_402_800_000  # 2026-11-23T03:00:00Z, i.e. 10:00 in Bangkok
REPORTED_AT_MS = 1_795_410_000_000  # 2026-11-23T05:00:00Z


def decode_transaction(message: object) -> Transfer | Rejection:
    raw = message if isinstance(message, bytes) else encoded(message)
    return decode_bank_transaction(raw, MAX_BYTES)


def decode_report(message: object) -> Report | Rejection:
    raw = message if isinstance(message, bytes) else encoded(message)
    return decode_victim_report(raw, MAX_BYTES, RECEIVED_AT_MS)


# --- valid input ---------------------------------------------------------------------------


def test_bank_transaction_decodes_to_a_transfer_in_minor_units_and_epoch_ms() -> None:
    assert decode_transaction(bank_transaction()) == Transfer(
        txn_id="KBANK-0001",
        source=("bank", "KBANK", "123-4-56789"),
        target=("ewallet", "SCB", "0812345678"),
        amount=150_025,
        currency="THB",
        at_ms=SENT_AT_MS,
    )


@pytest.mark.parametrize(("amount", "currency", "minor"), GOOD_AMOUNTS)
def test_amount_may_be_a_json_number_or_a_decimal_string(amount: object, currency: str, minor: int) -> None:
    transfer = decode_transaction(bank_transaction(amount=amount, currency=currency))

    assert isinstance(transfer, Transfer)
    assert (transfer.amount, transfer.currency) == (minor, currency)


@pytest.mark.parametrize(
    "executed_at",
    ["2026-11-23T10:00:00+07:00", "2026-11-23T03:00:00Z", "2026-11-23T03:00:00+00:00", "2026-11-22T22:00:00-05:00"],
)
def test_the_same_instant_in_any_zone_gives_the_same_epoch_ms(executed_at: str) -> None:
    transfer = decode_transaction(bank_transaction(executed_at=executed_at))

    assert isinstance(transfer, Transfer)
    assert transfer.at_ms == SENT_AT_MS


def test_milliseconds_are_kept_exactly() -> None:
    # Float seconds times 1000 used to make this ...429.
    transfer = decode_transaction(bank_transaction(executed_at="2038-08-15T15:00:50.430Z"))

    assert isinstance(transfer, Transfer)
    assert transfer.at_ms == 2_165_497_250_430


def test_an_account_without_a_kind_is_a_bank_account() -> None:
    transfer = decode_transaction(bank_transaction(to_account={"institution": "SCB", "account": "42"}))

    assert isinstance(transfer, Transfer)
    assert transfer.target == ("bank", "SCB", "42")


def test_extra_fields_are_ignored_at_every_level() -> None:
    message = bank_transaction(
        channel="mobile",
        memo={"text": "rent", "tags": ["home"]},
        from_account={**KBANK, "holder_name": "Somchai"},
    )

    assert decode_transaction(message) == decode_transaction(bank_transaction())


def test_victim_report_decodes_with_its_transfers() -> None:
    report = decode_report(victim_report(reported_transfer(txn_id="KBANK-0001")))

    assert report == Report(
        report_id="R-77",
        reported_at_ms=REPORTED_AT_MS,
        received_at_ms=RECEIVED_AT_MS,
        victim_id="V-9",
        country="TH",
        scam_type="fake_investment",
        transfers=(
            Transfer(
                txn_id="KBANK-0001",
                source=("bank", "KBANK", "123-4-56789"),
                target=("ewallet", "SCB", "0812345678"),
                amount=500_000,
                currency="THB",
                at_ms=SENT_AT_MS,
            ),
        ),
    )


def test_reported_transfers_without_a_txn_id_get_one_from_the_report_and_their_position() -> None:
    report = decode_report(
        victim_report(reported_transfer(), reported_transfer(txn_id="KBANK-0002"), reported_transfer(amount="20.50"))
    )

    assert isinstance(report, Report)
    assert [t.txn_id for t in report.transfers] == ["R-77#0", "KBANK-0002", "R-77#2"]
    assert [t.amount for t in report.transfers] == [500_000, 500_000, 2050]
    assert report.loss_by_currency == {"THB": 1_002_050}


def test_victim_report_ignores_extra_fields() -> None:
    message = victim_report(reported_transfer(bank_reference="X1"), source_portal="thaipoliceonline")

    assert decode_report(message) == decode_report(victim_report())


# --- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(("message", "field"), BAD_TRANSACTIONS.values(), ids=BAD_TRANSACTIONS.keys())
def test_an_invalid_transaction_is_rejected_with_a_sentence_naming_the_field(message: object, field: str) -> None:
    rejection = decode_transaction(message)

    assert isinstance(rejection, Rejection)
    assert rejection.reason == "invalid_event"
    assert rejection.error.startswith(f"{field}: ")


def test_the_rejection_says_what_is_wrong_with_the_value() -> None:
    assert decode_transaction(bank_transaction(amount="10.005")) == Rejection(
        "invalid_event", "amount: 10.005 has more decimal places than THB allows (2)"
    )
    assert decode_transaction(bank_transaction(executed_at="2026-11-23T10:00:00")) == Rejection(
        "invalid_event", "executed_at: '2026-11-23T10:00:00' has no time zone; add Z or an offset such as +07:00"
    )


def test_every_problem_is_listed_not_just_the_first() -> None:
    rejection = decode_transaction(bank_transaction(txn_id=..., currency="baht"))

    assert isinstance(rejection, Rejection)
    assert "txn_id: " in rejection.error
    assert "currency: " in rejection.error


@pytest.mark.parametrize(
    "raw",
    [b'{"txn_id": "KBANK-0001", ', b"", b"not json", b"{'txn_id': 'single quotes'}", b'{"txn_id": "\xff"}'],
    ids=["truncated", "empty", "text", "single quotes", "invalid UTF-8"],
)
def test_bytes_that_are_not_json_are_malformed(raw: bytes) -> None:
    for rejection in (decode_transaction(raw), decode_report(raw)):
        assert isinstance(rejection, Rejection)
        assert rejection.reason == "malformed_json"
        assert rejection.error.startswith("the message is not valid JSON (UTF-8): ")


@pytest.mark.parametrize(
    "message", [[bank_transaction()], "KBANK-0001", 1500, None], ids=["array", "string", "number", "null"]
)
def test_json_that_is_not_an_object_is_an_invalid_event(message: object) -> None:
    for rejection in (decode_transaction(message), decode_report(message)):
        assert rejection == Rejection("invalid_event", "Input should be an object")


def test_an_oversized_message_is_rejected_before_it_is_parsed() -> None:
    raw = encoded(bank_transaction(memo="x" * 100))

    assert decode_bank_transaction(raw, max_bytes=100) == Rejection(
        "oversized", f"the message is {len(raw)} bytes; the limit is 100"
    )
    assert decode_victim_report(raw, 100, RECEIVED_AT_MS) == Rejection(
        "oversized", f"the message is {len(raw)} bytes; the limit is 100"
    )


def test_a_message_of_exactly_the_limit_is_decoded() -> None:
    raw = encoded(bank_transaction())

    assert isinstance(decode_bank_transaction(raw, max_bytes=len(raw)), Transfer)


@pytest.mark.parametrize(("message", "field"), BAD_REPORTS.values(), ids=BAD_REPORTS.keys())
def test_an_invalid_report_is_rejected_with_a_sentence_naming_the_field(message: object, field: str) -> None:
    rejection = decode_report(message)

    assert isinstance(rejection, Rejection)
    assert rejection.reason == "invalid_event"
    assert rejection.error.startswith(f"{field}: ")


# --- report revisions ----------------------------------------------------------------------


def test_a_report_without_a_revision_is_revision_1() -> None:
    report = decode_report(victim_report())

    assert isinstance(report, Report)
    assert report.revision == 1


def test_a_correction_carries_its_revision() -> None:
    report, original = decode_report(victim_report(revision=3)), decode_report(victim_report())

    assert isinstance(report, Report)
    assert isinstance(original, Report)
    assert report.revision == 3
    assert report == replace(original, revision=3)


@pytest.mark.parametrize(
    ("revision", "error"),
    [
        (0, "revision: Input should be greater than or equal to 1"),
        (-2, "revision: Input should be greater than or equal to 1"),
        (2**31, "revision: Input should be less than or equal to 2147483647"),
        ("2", "revision: Input should be a valid integer"),
        (2.0, "revision: Input should be a valid integer"),
        (True, "revision: Input should be a valid integer"),
    ],
    ids=["zero", "negative", "too large", "a string", "a float", "true"],
)
def test_a_revision_that_is_not_a_positive_integer_is_rejected(revision: object, error: str) -> None:
    assert decode_report(victim_report(revision=revision)) == Rejection("invalid_event", error)


def test_a_release_request_is_authenticated_by_the_requester_topic_it_arrives_on() -> None:
    raw = encoded(release_request())

    request = decode_release_request(raw, MAX_BYTES, RECEIVED_AT_MS, authenticated_as="kbank")
    on_the_shared_topic = decode_release_request(raw, MAX_BYTES, RECEIVED_AT_MS, authenticated_as=None)
    on_another_partners = decode_release_request(raw, MAX_BYTES, RECEIVED_AT_MS, authenticated_as="scb")

    assert isinstance(request, ReleaseRequest)
    assert (request.requester, request.received_at_ms) == ("kbank", RECEIVED_AT_MS)
    assert isinstance(on_the_shared_topic, Rejection)
    assert on_the_shared_topic.reason == "unauthenticated"
    assert on_another_partners == Rejection(
        "unauthenticated", "requester: 'KBANK' cannot ask on the topic of 'scb'; use your own release-requests topic"
    )
