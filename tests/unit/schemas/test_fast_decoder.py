"""The msgspec hot path accepts what the pydantic contract accepts, and decodes the same values.

Messages are built as JSON text by hand, so they can hold what ``json.dumps`` would never
write: duplicate keys, NaN, invalid UTF-8, numbers of any length.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from wire_corpus import ODD_AMOUNT_NUMBERS, ODD_AMOUNT_STRINGS, ODD_CURRENCIES, ODD_TIMESTAMPS

from processors.records import Transfer
from schemas.decode import (
    FAST_PATH_MAX_BRACKETS,
    FAST_PATH_MAX_BYTES,
    Rejection,
    account_key,
    decode_bank_transaction,
    decode_bank_transaction_fast,
)
from schemas.events import BankTransaction
from schemas.fields import format_minor_units, minor_unit_exponent, to_minor_units

Pairs = list[tuple[str, bytes]]  # a JSON object as written: keys in order, values as JSON text


def pydantic_transfer(raw: bytes) -> Transfer | None:
    """The authoritative verdict: what ``BankTransaction`` makes of the message, or None."""
    try:
        txn = BankTransaction.model_validate_json(raw)
    except ValidationError:
        return None
    return Transfer(
        txn_id=txn.txn_id,
        source=account_key(txn.from_account),
        target=account_key(txn.to_account),
        amount=to_minor_units(txn.amount, txn.currency),
        currency=txn.currency,
        at_ms=txn.executed_at,
    )


def fast_path_may_decline(raw: bytes) -> bool:
    """The cases schemas.decode documents where msgspec cannot vouch for a message pydantic accepts."""
    if len(raw) > FAST_PATH_MAX_BYTES or raw.count(b"{") + raw.count(b"[") > FAST_PATH_MAX_BRACKETS:
        return True
    quirks: list[str] = []

    def note_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
        if len({key for key, _ in pairs}) < len(pairs):
            quirks.append("duplicate key")
        return dict(pairs)

    json.loads(raw, object_pairs_hook=note_duplicates, parse_constant=quirks.append)
    return bool(quirks)


def assert_fast_path_agrees(raw: bytes) -> None:
    expected = pydantic_transfer(raw)
    fast = decode_bank_transaction_fast(raw)
    if fast is not None:
        assert fast == expected
    elif expected is not None:
        assert fast_path_may_decline(raw), "the fast path declined a valid, ordinary message"

    decoded = decode_bank_transaction(raw, max_bytes=1 << 20)
    if expected is None:
        assert isinstance(decoded, Rejection)
        assert decoded.reason in {"malformed_json", "invalid_event"}
    else:
        assert decoded == expected


# --- writing JSON by hand ------------------------------------------------------------------


def text(value: str, ascii_only: bool = False) -> bytes:
    return json.dumps(value, ensure_ascii=ascii_only).encode()


def obj(pairs: Pairs, space: bytes = b"", escape_keys: bool = False) -> bytes:
    members = [(escaped(key) if escape_keys else text(key)) + space + b":" + space + value for key, value in pairs]
    return b"{" + space + (b"," + space).join(members) + space + b"}"


def escaped(key: str) -> bytes:
    """``key`` with every character a \\u escape: legal JSON the decoder must unescape to match a field."""
    utf16 = key.encode("utf-16-be")
    units = (int.from_bytes(utf16[i : i + 2]) for i in range(0, len(utf16), 2))
    return b'"' + b"".join(b"\\u%04x" % unit for unit in units) + b'"'


def with_value(pairs: Pairs, key: str, value: bytes) -> Pairs:
    if all(k != key for k, _ in pairs):
        return [*pairs, (key, value)]
    return [(k, value if k == key else v) for k, v in pairs]


# --- valid transactions --------------------------------------------------------------------

CURRENCIES = st.sampled_from(["THB", "USD", "JPY", "VND", "KWD", "BTC", "ETH", "USDT"]) | st.from_regex(
    r"[A-Z][A-Z0-9]{2,9}", fullmatch=True
)
IDENTIFIERS = st.text(min_size=1, max_size=24)
ZONES = st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))
MOMENTS = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=ZONES)


@st.composite
def accounts(draw: st.DrawFn, ascii_only: bool) -> bytes:
    pairs: Pairs = [
        ("institution", text(draw(IDENTIFIERS), ascii_only)),
        ("account", text(draw(IDENTIFIERS), ascii_only)),
    ]
    if draw(st.booleans()):
        pairs.append(("kind", text(draw(st.sampled_from(["bank", "ewallet", "crypto"])))))
    return obj(pairs)


@st.composite
def amounts(draw: st.DrawFn, currency: str) -> bytes:
    exponent = minor_unit_exponent(currency)
    minor = draw(st.integers(1, 10**6) | st.integers(1, 10 ** (15 + exponent) - 1))
    decimal = format_minor_units(minor, currency).encode()
    if minor >= 10**15:
        # Both decoders read JSON numbers as floats, which carry 15 significant digits exactly.
        return b'"' + decimal + b'"'
    return draw(st.sampled_from([b'"' + decimal + b'"', decimal]))


@st.composite
def timestamps(draw: st.DrawFn) -> bytes:
    moment = draw(MOMENTS)
    written = moment.isoformat(timespec=draw(st.sampled_from(["auto", "seconds", "milliseconds", "microseconds"])))
    if draw(st.booleans()):
        written = written.replace("+00:00", "Z")
    return text(written)


@st.composite
def valid_transactions(draw: st.DrawFn) -> Pairs:
    ascii_only = draw(st.booleans())
    currency = draw(CURRENCIES)
    pairs = [
        ("txn_id", text(draw(IDENTIFIERS), ascii_only)),
        ("from_account", draw(accounts(ascii_only))),
        ("to_account", draw(accounts(ascii_only))),
        ("amount", draw(amounts(currency))),
        ("currency", text(currency)),
        ("executed_at", draw(timestamps())),
    ]
    return draw(st.permutations(pairs))


# --- ways to spoil them --------------------------------------------------------------------

FIELDS = ["txn_id", "from_account", "to_account", "amount", "currency", "executed_at"]
NESTING = st.integers(1, 250).map(lambda depth: b"[" * depth + b"]" * depth)
ODD_VALUES = st.sampled_from(
    [b"null", b"true", b"false", b"0", b"1", b"-1", b"1.5", b"[]", b'["x"]', b"{}", b'{"a": 1}', b'""', b'" "']
) | st.builds(lambda n: text("x" * n), st.sampled_from([1, 128, 129, 300, 5000]))
AMOUNT_STRINGS = ODD_AMOUNT_STRINGS
AMOUNT_NUMBERS = [b"NaN", b"Infinity", b"-Infinity", *ODD_AMOUNT_NUMBERS, b"1" * 4301]
ODD_AMOUNTS = (
    st.sampled_from(AMOUNT_STRINGS).map(text)
    | st.sampled_from(AMOUNT_NUMBERS)
    | st.integers(14, 40).map(lambda k: str(10**k).encode())
    | st.decimals(allow_nan=True, allow_infinity=True).map(lambda d: str(d).encode())
    | st.decimals(allow_nan=False, allow_infinity=False).map(lambda d: text(str(d)))
    | st.floats().map(lambda f: repr(f).encode())
    | st.integers().map(lambda i: str(i).encode())
)
ODD_CURRENCY_TEXTS = st.sampled_from(ODD_CURRENCIES).map(text) | st.text(max_size=12).map(text)
ODD_TIMESTAMP_TEXTS = st.sampled_from(ODD_TIMESTAMPS).map(text) | st.text(max_size=30).map(text)
EXTRA_VALUES = (
    st.sampled_from([b"NaN", b"Infinity", b"-Infinity", b"1e400", b'"\xff"', b'"\xed\xa0\x80"', b'"\\ud800"'])
    | st.sampled_from([b'"[{"', b'"\\u0000"', b'"\xc3\xa9"', b"-0", b'{"kind": "card"}'])
    | st.sampled_from([4300, 4301, 5000]).map(lambda n: b"9" * n)
    | NESTING
    | ODD_VALUES
    | st.recursive(
        st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(),
        lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
        max_leaves=8,
    ).map(lambda value: json.dumps(value).encode())
)


@st.composite
def drop_a_field(draw: st.DrawFn, pairs: Pairs) -> Pairs:
    index = draw(st.integers(0, len(pairs) - 1))
    return pairs[:index] + pairs[index + 1 :]


@st.composite
def odd_value(draw: st.DrawFn, pairs: Pairs) -> Pairs:
    return with_value(pairs, draw(st.sampled_from(FIELDS)), draw(ODD_VALUES))


@st.composite
def odd_amount(draw: st.DrawFn, pairs: Pairs) -> Pairs:
    return with_value(pairs, "amount", draw(ODD_AMOUNTS))


@st.composite
def odd_currency(draw: st.DrawFn, pairs: Pairs) -> Pairs:
    return with_value(pairs, "currency", draw(ODD_CURRENCY_TEXTS | CURRENCIES.map(text)))


@st.composite
def odd_timestamp(draw: st.DrawFn, pairs: Pairs) -> Pairs:
    return with_value(pairs, "executed_at", draw(ODD_TIMESTAMP_TEXTS))


@st.composite
def odd_account(draw: st.DrawFn, pairs: Pairs) -> Pairs:
    members: Pairs = [("institution", b'"KBANK"'), ("account", b'"123"'), ("kind", b'"bank"')]
    spoil = draw(st.sampled_from(["extra", "missing", "kind", "not an object"]))
    if spoil == "extra":
        members.append((draw(st.text(max_size=8)), draw(EXTRA_VALUES)))
    elif spoil == "missing":
        members = draw(drop_a_field(members))
    elif spoil == "kind":
        members = with_value(members, "kind", draw(st.sampled_from([b'"card"', b'"BANK"', b"null", b'""', b"1"])))
    account = obj(members) if spoil != "not an object" else draw(st.sampled_from([b'"KBANK:123"', b'["KBANK", "123"]']))
    return with_value(pairs, draw(st.sampled_from(["from_account", "to_account"])), account)


@st.composite
def extra_field(draw: st.DrawFn, pairs: Pairs) -> Pairs:
    index = draw(st.integers(0, len(pairs)))
    return [*pairs[:index], (draw(st.text(max_size=8)), draw(EXTRA_VALUES)), *pairs[index:]]


@st.composite
def duplicate_key(draw: st.DrawFn, pairs: Pairs) -> Pairs:
    key = draw(st.sampled_from(FIELDS))
    value = draw(st.sampled_from([value for k, value in pairs if k == key] or [b'"x"']) | ODD_VALUES)
    index = draw(st.integers(0, len(pairs)))
    return [*pairs[:index], (key, value), *pairs[index:]]


PAIR_MUTATIONS = [
    drop_a_field,
    odd_value,
    odd_amount,
    odd_currency,
    odd_timestamp,
    odd_account,
    extra_field,
    duplicate_key,
]


@st.composite
def spoil_the_bytes(draw: st.DrawFn, raw: bytes) -> bytes:
    at = draw(st.integers(0, len(raw)))
    spoil = draw(st.sampled_from(["insert", "delete", "append", "prefix"]))
    junk = draw(st.sampled_from([b"\xff", b"\xc0\x80", b"\xed\xa0\x80", b"\x00", b",", b"}", b'"', b"\\", b" x"]))
    if spoil == "insert":
        return raw[:at] + junk + raw[at:]
    if spoil == "delete":
        return raw[:at] + raw[at + 1 :]
    if spoil == "append":
        return raw + draw(st.sampled_from([b" ", b"\n", b"\x00", b" x", b"}", b"{}"]))
    return draw(st.sampled_from([b"\xef\xbb\xbf", b" \t\r\n", b"\x0c", b"\xc2\xa0"])) + raw


@st.composite
def messages(draw: st.DrawFn) -> bytes:
    pairs = draw(valid_transactions())
    for _ in range(draw(st.integers(0, 3))):
        pairs = draw(draw(st.sampled_from(PAIR_MUTATIONS))(pairs))
    raw = obj(pairs, space=draw(st.sampled_from([b"", b" ", b"\n\t", b"\r\n  "])), escape_keys=draw(st.booleans()))
    shape = draw(st.sampled_from(["object", "object", "object", "spoiled bytes", "not an object"]))
    if shape == "spoiled bytes":
        return draw(spoil_the_bytes(raw))
    if shape == "not an object":
        return draw(st.sampled_from([b"[" + raw + b"]", b"[]", b"1500", b'"txn"', b"null", b"true"]))
    return raw


# --- the properties ------------------------------------------------------------------------


@settings(max_examples=400)
@given(messages())
def test_fast_path_accepts_exactly_what_pydantic_accepts_and_decodes_the_same_values(raw: bytes) -> None:
    assert_fast_path_agrees(raw)


@settings(max_examples=100)
@given(valid_transactions())
def test_ordinary_valid_transactions_take_the_fast_path(pairs: Pairs) -> None:
    raw = obj(pairs)

    transfer = decode_bank_transaction_fast(raw)

    assert transfer is not None
    assert transfer == pydantic_transfer(raw)


# --- the disagreements these properties found ----------------------------------------------

VALID = obj(
    [
        ("txn_id", b'"KBANK-0001"'),
        ("from_account", b'{"institution": "KBANK", "account": "123"}'),
        ("to_account", b'{"institution": "SCB", "account": "456"}'),
        ("amount", b'"1500.25"'),
        ("currency", b'"THB"'),
        ("executed_at", b'"2026-11-23T10:00:00+07:00"'),
    ]
)


def with_extra(value: bytes) -> bytes:
    return VALID[:-1] + b', "memo": ' + value + b"}"


@pytest.mark.parametrize(
    "raw",
    [
        with_extra(b"NaN"),
        with_extra(b"-Infinity"),
        b'{"txn_id": 123, ' + VALID[1:],
        b'{"amount": true, ' + VALID[1:],
    ],
    ids=["NaN in an ignored field", "Infinity in an ignored field", "duplicate key, bad then good", "bad amount first"],
)
def test_messages_only_pydantic_reads_are_decoded_not_sent_to_dead_letters(raw: bytes) -> None:
    # These used to become "rejected by the fast decoder; please report this".
    assert decode_bank_transaction_fast(raw) is None
    assert_fast_path_agrees(raw)
    assert isinstance(decode_bank_transaction(raw, max_bytes=1 << 20), Transfer)


@pytest.mark.parametrize(
    "raw",
    [
        with_extra(b'"\xff"'),
        with_extra(b'"\xed\xa0\x80"'),
        VALID.replace(b"KBANK-0001", b"KBANK-\xff"),
        with_extra(b"[" * 201 + b"]" * 201),
        with_extra(b"[" * 1000 + b"]" * 1000),
        with_extra(b"9" * 4301),
    ],
    ids=[
        "invalid UTF-8 in an ignored field",
        "UTF-8 surrogate in an ignored field",
        "invalid UTF-8 in txn_id",
        "nesting past 200 in an ignored field",
        "nesting past the recursion limit",
        "a 4,301-digit number in an ignored field",
    ],
)
def test_messages_pydantic_refuses_are_refused_by_the_fast_path_too(raw: bytes) -> None:
    # The fast path used to accept the ignored-field cases and raise on the other two.
    assert decode_bank_transaction_fast(raw) is None
    assert_fast_path_agrees(raw)
    rejection = decode_bank_transaction(raw, max_bytes=1 << 20)
    assert isinstance(rejection, Rejection)
    assert rejection.reason == "malformed_json"
