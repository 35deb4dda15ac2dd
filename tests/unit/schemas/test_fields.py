"""The value parsers both decoders share: exact minor units and exact epoch milliseconds."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from schemas.fields import (
    FieldError,
    amount_in_minor_units,
    format_minor_units,
    parse_amount,
    parse_timestamp_ms,
    to_minor_units,
)

EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


@pytest.mark.parametrize(
    ("amount", "currency"),
    [
        # More significant digits than decimal's default 28: these used to round to a whole amount.
        ("100.0000000000000000000000000001", "THB"),
        ("999999999999999.999999999999999999", "THB"),
        ("1.0000000000000000000000000000001", "ETH"),
        # Far below the default exponent range: this used to underflow to 0 minor units.
        ("1e-2000000", "THB"),
    ],
)
def test_an_amount_with_more_decimals_than_the_currency_allows_is_refused_however_long(
    amount: str, currency: str
) -> None:
    with pytest.raises(FieldError, match="more decimal places than"):
        to_minor_units(parse_amount(amount), currency)


def test_minor_units_are_exact_beyond_28_digits() -> None:
    assert to_minor_units(Decimal("123456789012345.123456789012345678"), "ETH") == 123456789012345123456789012345678


@given(st.integers(min_value=1, max_value=10**33 - 1), st.sampled_from(["THB", "JPY", "KWD", "BTC", "ETH"]))
def test_minor_units_survive_a_round_trip_through_the_decimal_string_we_emit(minor: int, currency: str) -> None:
    assert to_minor_units(Decimal(format_minor_units(minor, currency)), currency) == minor


@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)))
def test_epoch_milliseconds_are_exact_and_floored(moment: datetime) -> None:
    # Float seconds times 1000 used to be a millisecond off, e.g. for 2038-08-15T15:00:50.430Z.
    days = moment.toordinal() - EPOCH_ORDINAL
    seconds = ((days * 24 + moment.hour) * 60 + moment.minute) * 60 + moment.second

    assert parse_timestamp_ms(moment.isoformat() + "Z") == seconds * 1000 + moment.microsecond // 1000


@given(
    st.one_of(
        st.integers(min_value=-10, max_value=10**16),
        st.from_regex(r"[0-9]{1,17}(\.[0-9]{0,20})?", fullmatch=True),
        st.decimals(allow_nan=False, allow_infinity=False).map(str),
        st.floats(allow_nan=False).map(str),
        st.floats(),  # a JSON number with a fraction arrives as a float
    ),
    st.sampled_from(["THB", "JPY", "KWD", "ETH"]),
)
@example(10**15, "THB")
@example(10**15 - 1, "THB")
@example("999999999999999.99", "THB")
@example("0.00", "THB")
@example("5.10", "JPY")
@example(True, "THB")
@example(41.72, "THB")
@example(0.1, "JPY")
@example(1e-05, "ETH")
@example(999999999999999.9, "THB")
@example(-0.0, "THB")
@example("1500.", "THB")
@example("+5", "THB")
@example(" 5", "THB")
@example("\u0665", "THB")  # an Arabic-Indic five: a digit to str.isdigit, not to the shortcut
@example("\u00b2", "THB")  # a superscript two: the same
@example("1" * 16, "JPY")
@example("1." + "0" * 19, "THB")
def test_the_amount_shortcut_agrees_with_the_exact_path(value: object, currency: str) -> None:
    def outcome(convert: Callable[[], int]) -> int | str:
        try:
            return convert()
        except FieldError:
            return "rejected"

    assert outcome(lambda: amount_in_minor_units(value, currency)) == outcome(
        lambda: to_minor_units(parse_amount(value), currency)
    )
