"""The decoder's value rules written as JSON Schema, so partners can check a message before sending it.

The pydantic models validate with the shared parsers in ``schemas/fields.py``; pydantic cannot
derive a JSON Schema from a parser function, so each rule is written here once more, as a
pattern or a condition, and attached to the models (``schemas/events.py``). Patterns avoid
look-arounds and back-references, so every regex engine partners use (ECMA-262, RE2, Java)
reads them alike. tests/unit/schemas/test_strict_schemas.py feeds the decoder's rejection
corpus through a Draft 2020-12 validator to hold the two to the same verdicts.

Where the schema is stricter than the decoder it says so: amounts as decimal strings in plain
notation (no exponent, sign or spaces), timestamps in RFC 3339 only (the decoder also reads
other ISO 8601 forms). The README lists what only the decoder can check.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from schemas.fields import DEFAULT_MINOR_UNIT_EXPONENT, MAX_MAJOR_UNITS, MINOR_UNIT_EXPONENTS

JsonSchema = dict[str, Any]
_INTEGER_DIGITS = len(str(int(MAX_MAJOR_UNITS))) - 1  # amounts stay below 10^15: at most 15 integer digits
_FLOAT_DIGITS = 15  # significant decimal digits a binary float carries exactly


def amount_pattern(exponent: int | None) -> str:
    """A positive decimal string below 10^15 with at most ``exponent`` significant decimals (None: any)."""
    fraction = {None: "[0-9]*", 0: "0*"}.get(exponent, f"[0-9]{{0,{exponent}}}0*")
    whole = f"0*[1-9][0-9]{{0,{_INTEGER_DIGITS - 1}}}(?:\\.{fraction})?"
    if exponent == 0:
        return f"^{whole}$"
    # Below one: a non-zero digit within the allowed decimals, then only zeros.
    significant = "[0-9]*[1-9][0-9]*" if exponent is None else f"[0-9]{{0,{exponent - 1}}}[1-9]0*"
    return f"^(?:{whole}|0*\\.{significant})$"


def amount_schema(exponent: int | None = None) -> JsonSchema:
    """A JSON number or decimal string: positive, below 10^15, at most ``exponent`` decimals (None: any)."""
    options: list[JsonSchema] = [{"type": "string", "pattern": amount_pattern(exponent)}]
    number_digits = _FLOAT_DIGITS - (exponent or 0)
    if number_digits > 0:
        # The decoder reads a JSON number as a binary float, exact to 15 significant digits: a number that
        # fits in them means what it says, so numbers are bounded to leave room for the decimals.
        number: JsonSchema = {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 10**number_digits}
        if exponent is not None:
            # Exact for validators that read numbers as decimals; binary floats make 0.07 / 0.01 inexact.
            number["multipleOf"] = 1 if exponent == 0 else float(f"1e-{exponent}")
        options.insert(0, number)
    return {
        "anyOf": options,
        "description": "positive, below 10^15, with no more decimals than the currency's minor unit "
        '(THB 2, JPY 0, KWD 3, USDT 6, BTC 8, ETH 18, others 2): a decimal string such as "1500.00", or a '
        "JSON number of at most 15 significant digits (a float reads no more exactly)",
    }


def amount_fits_currency(schema: JsonSchema) -> None:
    """``json_schema_extra`` of a model with ``amount`` and ``currency``: decimals by the currency's minor unit."""
    by_exponent: dict[int, list[str]] = {}
    for currency, exponent in sorted(MINOR_UNIT_EXPONENTS.items()):
        by_exponent.setdefault(exponent, []).append(currency)
    rules = [_when_currency({"enum": currencies}, exponent) for exponent, currencies in sorted(by_exponent.items())]
    rules.append(_when_currency({"not": {"enum": sorted(MINOR_UNIT_EXPONENTS)}}, DEFAULT_MINOR_UNIT_EXPONENT))
    schema.setdefault("allOf", []).extend(rules)


def _when_currency(currency: JsonSchema, exponent: int) -> JsonSchema:
    return {
        "if": {"properties": {"currency": currency}, "required": ["currency"]},
        "then": {"properties": {"amount": {"anyOf": amount_schema(exponent)["anyOf"]}}},
    }


def required_by_kind(required: Mapping[str, str]) -> JsonSchema:
    """``allOf`` rules: an event of each kind carries (non-null) the field its kind cannot do without."""
    return {
        "allOf": [
            {
                "if": {"properties": {"kind": {"const": kind}}, "required": ["kind"]},
                "then": {"required": [field], "properties": {field: {"not": {"type": "null"}}}},
            }
            for kind, field in sorted(required.items())
        ]
    }


_DATE = (
    "(?:000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
    "|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
    "|02-(?:0[1-9]|1[0-9]|2[0-9]))"
)
_TIME = "(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.[0-9]{1,6})?"
_ZONE = "(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
TIMESTAMP_PATTERN = f"^{_DATE}[T ]{_TIME}{_ZONE}$"
TIMESTAMP_SCHEMA: JsonSchema = {
    "type": "string",
    "format": "date-time",
    "pattern": TIMESTAMP_PATTERN,
    "description": "RFC 3339 with a zone (Z or an offset such as +07:00), e.g. 2026-11-23T10:00:00+07:00",
}

_OCTET = "(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_IPV4 = f"{_OCTET}(?:\\.{_OCTET}){{3}}"


def _ipv6() -> str:
    """RFC 3986's IPv6address grammar, one alternative per position of ``::``."""
    h16 = "[0-9A-Fa-f]{1,4}"
    ls32 = f"(?:{h16}:{h16}|{_IPV4})"

    def groups(n: int) -> str:
        return f"(?:{h16}:){{{n}}}" if n else ""

    def head(most: int) -> str:  # [ *most( h16 ":" ) h16 ]
        return f"(?:(?:{h16}:){{0,{most}}}{h16})?" if most else f"(?:{h16})?"

    alternatives = [f"{groups(6)}{ls32}", f"::{groups(5)}{ls32}"]
    alternatives += [f"{head(k)}::{groups(4 - k)}{ls32}" for k in range(4)]
    alternatives += [f"{head(4)}::{ls32}", f"{head(5)}::{h16}", f"{head(6)}::"]
    return "|".join(alternatives)


IP_PATTERN = f"^(?:{_IPV4}|{_ipv6()})$"
IP_SCHEMA: JsonSchema = {
    "type": "string",
    "pattern": IP_PATTERN,
    "description": "an IPv4 address (no leading zeros) or an IPv6 address",
}
