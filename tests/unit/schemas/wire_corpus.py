"""Messages the decoder accepts and rejects, shared by the decoder tests and the JSON Schema test.

One corpus, so that a rejection the decoder learns is checked against the exported schemas too
(tests/unit/schemas/test_strict_schemas.py). Each bad message names the field the rejection must
start with. ``DECODER_ONLY`` lists the rejections no JSON Schema can express; the README lists
them as the decoder's extra checks.
"""

from __future__ import annotations

import json
from typing import Any

KBANK = {"institution": "KBANK", "account": "123-4-56789"}
SCB_EWALLET = {"institution": "SCB", "account": "0812345678", "kind": "ewallet"}

Message = dict[str, Any]


def bank_transaction(**changes: Any) -> Message:
    """A valid transaction; a change of ``...`` drops the field."""
    message = {
        "txn_id": "KBANK-0001",
        "from_account": KBANK,
        "to_account": SCB_EWALLET,
        "amount": "1500.25",
        "currency": "THB",
        "executed_at": "2026-11-23T10:00:00+07:00",
    }
    return _changed(message, changes)


def reported_transfer(**changes: Any) -> Message:
    message = {
        "from_account": KBANK,
        "to_account": SCB_EWALLET,
        "amount": 5000,
        "currency": "THB",
        "sent_at": "2026-11-23T03:00:00Z",
    }
    return _changed(message, changes)


def victim_report(*transfers: Message, **changes: Any) -> Message:
    message = {
        "report_id": "R-77",
        "reported_at": "2026-11-23T12:00:00+07:00",
        "victim_id": "V-9",
        "country": "TH",
        "scam_type": "fake_investment",
        "transfers": list(transfers) or [reported_transfer()],
    }
    return _changed(message, changes)


def telecom_event(**changes: Any) -> Message:
    """A valid call; other kinds change ``kind`` and add what they need."""
    message = {
        "event_id": "AIS-1",
        "operator": "AIS",
        "kind": "call",
        "msisdn": "+66812345678",
        "occurred_at": "2026-11-23T09:00:00+07:00",
        "counterparty_msisdn": "+66898765432",
    }
    return _changed(message, changes)


def action_ack(**changes: Any) -> Message:
    message = {
        "action_id": "frz-0123456789abcdef01234567",
        "version": 1,
        "addressee": "KBANK",
        "status": "executed",
        "amount_held": "25000.00",
        "acked_at": "2026-11-23T10:05:00+07:00",
    }
    return _changed(message, changes)


def release_request(**changes: Any) -> Message:
    """A valid request from KBANK (decoded as arriving on its own topic, release-requests.kbank)."""
    message = {
        "request_id": "KBANK-APPEAL-1",
        "action_id": "frz-0123456789abcdef01234567",
        "requester": "KBANK",
        "reason": "the customer showed the incoming money is a salary",
        "requested_at": "2026-11-24T10:00:00+07:00",
    }
    return _changed(message, changes)


def _changed(message: Message, changes: dict[str, Any]) -> Message:
    for field, value in changes.items():
        if value is ...:
            del message[field]
        else:
            message[field] = value
    return message


def encoded(message: object) -> bytes:
    return json.dumps(message).encode()


# --- accepted ------------------------------------------------------------------------------

# (amount, currency, minor units): the shapes partners send.
GOOD_AMOUNTS = [
    ("1500.25", "THB", 150_025),
    (1500.25, "THB", 150_025),
    (1500, "THB", 150_000),
    ("1500", "THB", 150_000),
    ("1500.000", "THB", 150_000),
    (5000, "JPY", 5000),
    ("5000", "JPY", 5000),
    ("1.234", "KWD", 1234),
    ("0.00000001", "BTC", 1),
    (0.5, "USDT", 500_000),
    (0.07, "THB", 7),
    ("999999999999999.99", "THB", 99_999_999_999_999_999),
    ("0.000000000000000001", "ETH", 1),
]
GOOD_TIMESTAMPS = [
    "2026-11-23T10:00:00+07:00",
    "2026-11-23T03:00:00Z",
    "2026-11-23T03:00:00+00:00",
    "2026-11-22T22:00:00-05:00",
    "2038-08-15T15:00:50.430Z",
    "2028-02-29T00:00:00Z",
]
GOOD_IPS = ["203.0.113.7", "0.0.0.0", "255.255.255.255", "2001:db8::1", "2001:DB8::1", "::", "::1", "::ffff:192.0.2.1"]
GOOD_IPS += ["fe80::1:2:3:4:5:6", "1:2:3:4:5:6:7:8", "1::8", "1:2:3:4:5:6::"]

GOOD: dict[str, list[Message]] = {
    "bank-transactions": [
        bank_transaction(),
        *(bank_transaction(amount=amount, currency=currency) for amount, currency, _ in GOOD_AMOUNTS),
        *(bank_transaction(executed_at=at) for at in GOOD_TIMESTAMPS),
        bank_transaction(to_account={"institution": "SCB", "account": "42"}),
        bank_transaction(channel="mobile", memo={"text": "rent"}, from_account={**KBANK, "holder_name": "Somchai"}),
    ],
    "victim-reports": [
        victim_report(),
        victim_report(reported_transfer(txn_id="KBANK-0001"), reported_transfer(amount="20.50")),
        victim_report(scammer_phones=["+66812345678"], scam_urls=["https://invest-now.example/th"], revision=3),
        victim_report(reported_transfer(bank_reference="X1"), source_portal="thaipoliceonline"),
    ],
    "telecom-events": [
        telecom_event(),
        telecom_event(kind="sms"),
        telecom_event(kind="sim_registration", counterparty_msisdn=..., registered_id="ID-1", imei="356938035643809"),
        telecom_event(kind="sim_swap", counterparty_msisdn=...),
        *(telecom_event(kind="data_session", counterparty_msisdn=..., ip=ip) for ip in GOOD_IPS),
        telecom_event(cell_id="C-7", ip=None, imei=None),
    ],
    "action-acks": [
        action_ack(),
        action_ack(status="rejected", amount_held=..., note="account closed"),
        action_ack(amount_held=0.5),
        action_ack(version=3, status="partial", amount_held="12.345678"),
    ],
    "release-requests": [release_request(), release_request(requester="kbank", channel="desk")],
}

# --- rejected ------------------------------------------------------------------------------

BAD_TRANSACTIONS = {
    "missing field": (bank_transaction(txn_id=...), "txn_id"),
    "amount true": (bank_transaction(amount=True), "amount"),
    "amount null": (bank_transaction(amount=None), "amount"),
    "amount a word": (bank_transaction(amount="lots"), "amount"),
    "txn_id a number": (bank_transaction(txn_id=123), "txn_id"),
    "txn_id empty": (bank_transaction(txn_id=""), "txn_id"),
    "txn_id too long": (bank_transaction(txn_id="x" * 129), "txn_id"),
    "negative amount": (bank_transaction(amount="-5.00"), "amount"),
    "negative amount as a number": (bank_transaction(amount=-5), "amount"),
    "zero amount": (bank_transaction(amount=0), "amount"),
    "zero amount as a string": (bank_transaction(amount="0.00"), "amount"),
    "too many decimals for THB": (bank_transaction(amount=10.005), "amount"),
    "too many decimals for THB as a string": (bank_transaction(amount="10.005"), "amount"),
    "too many decimals for an unlisted currency": (bank_transaction(amount="1.001", currency="SGD"), "amount"),
    "too many decimals for KWD": (bank_transaction(amount="1.2345", currency="KWD"), "amount"),
    "decimals for JPY": (bank_transaction(amount=5.5, currency="JPY"), "amount"),
    "decimals for JPY as a string": (bank_transaction(amount="5.5", currency="JPY"), "amount"),
    "below a satoshi": (bank_transaction(amount="0.000000001", currency="BTC"), "amount"),
    "implausibly large": (bank_transaction(amount=10**15), "amount"),
    "implausibly large as a string": (bank_transaction(amount="1000000000000000"), "amount"),
    "timestamp without a zone": (bank_transaction(executed_at="2026-11-23T10:00:00"), "executed_at"),
    "timestamp not a date": (bank_transaction(executed_at="yesterday"), "executed_at"),
    "timestamp a number": (bank_transaction(executed_at=1795402800000), "executed_at"),
    "timestamp month 13": (bank_transaction(executed_at="2026-13-01T10:00:00Z"), "executed_at"),
    "timestamp 30 February": (bank_transaction(executed_at="2026-02-30T10:00:00Z"), "executed_at"),
    "timestamp 29 February in a common year": (bank_transaction(executed_at="2026-02-29T10:00:00Z"), "executed_at"),
    "timestamp hour 24": (bank_transaction(executed_at="2026-11-23T24:00:00Z"), "executed_at"),
    "lowercase currency": (bank_transaction(currency="thb"), "currency"),
    "currency with a newline": (bank_transaction(currency="THB\n"), "currency"),
    "account a plain string": (bank_transaction(from_account="KBANK:123-4-56789"), "from_account"),
    "account without a number": (bank_transaction(to_account={"institution": "SCB"}), "to_account.account"),
    "unknown account kind": (bank_transaction(to_account={**SCB_EWALLET, "kind": "card"}), "to_account.kind"),
}

BAD_REPORTS = {
    "missing field": (victim_report(victim_id=...), "victim_id"),
    "no transfers": (victim_report(transfers=[]), "transfers"),
    "country not ISO 3166": (victim_report(country="Thailand"), "country"),
    "timestamp without a zone": (victim_report(reported_at="2026-11-23 12:00"), "reported_at"),
    "scammer phone not E.164": (victim_report(scammer_phones=["081-234-5678"]), "scammer_phones.0"),
    "transfer amount true": (victim_report(reported_transfer(amount=True)), "transfers.0.amount"),
    "transfer too many decimals": (
        victim_report(reported_transfer(), reported_transfer(amount="10.005")),
        "transfers.1: amount",
    ),
    "transfer zero amount": (victim_report(reported_transfer(amount=0)), "transfers.0.amount"),
    "transfer account a plain string": (victim_report(reported_transfer(to_account="SCB")), "transfers.0.to_account"),
    "transfer unknown account kind": (
        victim_report(reported_transfer(from_account={**KBANK, "kind": "cheque"})),
        "transfers.0.from_account.kind",
    ),
    "transfer txn_id a number": (victim_report(reported_transfer(txn_id=7)), "transfers.0.txn_id"),
    "revision zero": (victim_report(revision=0), "revision"),
    "revision too large": (victim_report(revision=2**31), "revision"),
    "revision a string": (victim_report(revision="2"), "revision"),
    "revision a float": (victim_report(revision=2.0), "revision"),
    "revision true": (victim_report(revision=True), "revision"),
}

BAD_TELECOM_EVENTS = {
    "a call without a counterparty": (telecom_event(counterparty_msisdn=...), "counterparty_msisdn"),
    "a call with a null counterparty": (telecom_event(counterparty_msisdn=None), "counterparty_msisdn"),
    "an sms without a counterparty": (telecom_event(kind="sms", counterparty_msisdn=...), "counterparty_msisdn"),
    "a registration without an identity": (telecom_event(kind="sim_registration"), "registered_id"),
    "a data session without an ip": (telecom_event(kind="data_session"), "ip"),
    "an invalid ip": (telecom_event(kind="data_session", ip="300.1.2.3"), "ip"),
    "an ipv4 with a leading zero": (telecom_event(kind="data_session", ip="10.01.2.3"), "ip"),
    "an ipv6 with two gaps": (telecom_event(kind="data_session", ip="1::2::3"), "ip"),
    "an ipv6 with nine groups": (telecom_event(kind="data_session", ip="1:2:3:4:5:6:7:8:9"), "ip"),
    "an ip that is a host name": (telecom_event(kind="data_session", ip="gw.example"), "ip"),
    "an unknown kind": (telecom_event(kind="fax"), "kind"),
    "msisdn not E.164": (telecom_event(msisdn="0812345678"), "msisdn"),
    "imei too short": (telecom_event(imei="1234"), "imei"),
    "timestamp without a zone": (telecom_event(occurred_at="2026-11-23T09:00:00"), "occurred_at"),
}

BAD_ACKS = {
    "unknown status": (action_ack(status="done"), "status"),
    "version zero": (action_ack(version=0), "version"),
    "negative amount held": (action_ack(amount_held="-1"), "amount_held"),
    "zero amount held": (action_ack(amount_held=0), "amount_held"),
    "amount held a word": (action_ack(amount_held="all of it"), "amount_held"),
    "note too long": (action_ack(note="x" * 2001), "note"),
    "missing addressee": (action_ack(addressee=...), "addressee"),
    "timestamp without a zone": (action_ack(acked_at="2026-11-23T10:05:00"), "acked_at"),
}

BAD_RELEASE_REQUESTS = {
    "missing reason": (release_request(reason=...), "reason"),
    "empty reason": (release_request(reason=""), "reason"),
    "reason too long": (release_request(reason="x" * 2001), "reason"),
    "empty action_id": (release_request(action_id=""), "action_id"),
    "timestamp without a zone": (release_request(requested_at="2026-11-24T10:00:00"), "requested_at"),
    "another partner's name": (release_request(requester="SCB"), "requester"),
}

BAD: dict[str, dict[str, tuple[Message, str]]] = {
    "bank-transactions": BAD_TRANSACTIONS,
    "victim-reports": BAD_REPORTS,
    "telecom-events": BAD_TELECOM_EVENTS,
    "action-acks": BAD_ACKS,
    "release-requests": BAD_RELEASE_REQUESTS,
}

# Rejections a JSON Schema cannot express, by topic and corpus name, with why.
DECODER_ONLY: dict[tuple[str, str], str] = {
    ("bank-transactions", "timestamp 29 February in a common year"): "leap years are arithmetic, not a pattern",
    ("victim-reports", "revision a float"): "JSON Schema's integer type admits 2.0; the decoder wants 2",
    ("release-requests", "another partner's name"): "who may ask depends on the topic the request arrives on",
}

# Values a partner's code might produce by mistake; substituted into a valid message one at a time.
ODD_AMOUNT_STRINGS = [" 5 ", "5 ", "\t5", "1e3", "1E3", "+5", "-5", "0", "-0", "0.00", "NaN", "nan", "sNaN", "Infinity"]
ODD_AMOUNT_STRINGS += ["1_000", "\u0665", "0x10", ".5", "5.", "1,000.00", "", "10.005", "1.000000000000000000000001"]
ODD_AMOUNT_NUMBERS = [b"1e3", b"1E+2", b"-0", b"0.0", b"1e400", b"1e-400", b"5e-324", b"0.1", b"10.005"]
ODD_AMOUNT_NUMBERS += [b"1.000000000000000000000001", b"123456789012345.678", b"999999999999999.99", b"1" * 4300]
ODD_TIMESTAMPS = [
    "2026-11-23T10:00:00",
    "2026-11-23 10:00:00Z",
    "2026-11-23",
    "2026-11-23Z",
    "2026-11-23t10:00:00z",
    "20261123T100000Z",
    "2026-11-23T10Z",
    "2026-11-23T10:00:00+07",
    "2026-11-23T10:00:00+0700",
    "2026-11-23T10:00:00+07:00:30",
    "2026-11-23T10:00:00-00:00",
    "2026-11-23T10:00:00.123456789Z",
    "2026-11-23T10:00:00,5Z",
    "2026-W47-1T10:00Z",
    "2026-11-23T24:00:00Z",
    "2026-02-30T10:00:00Z",
    "2026-11-31T10:00:00Z",
    "2026-11-23T10:00:60Z",
    " 2026-11-23T10:00:00Z",
    "2026-11-23T10:00:00Z ",
    "2026-11-23T10:00:00Z\n",
    "10:00:00Z",
    "",
]
ODD_CURRENCIES = ["thb", "THB\n", " THB", "THB ", "TH", "ABCDEFGHIJK", "T HB", "Thb", "ÄBC", "TH\x00B"]
ODD_IPS = ["1.2.3", "1.2.3.4.5", "256.0.0.1", "01.2.3.4", "1.2.3.4/24", "::g", ":::", "1:2:3:4:5:6:7"]
ODD_IPS += ["1:2:3:4:5:6:7:8:9"]
ODD_IPS += ["::ffff:1.2.3.256", "fe80::1%eth0", " ::1", "::1 ", "::1\n", "2001:db8::00001", "", "localhost"]
