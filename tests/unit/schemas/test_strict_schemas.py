"""The exported JSON Schemas reject what the decoder rejects, and accept what it accepts.

Partners validate with the files in ``schemas/json/`` before they send. Every message of the
decoder's corpus (tests/unit/schemas/wire_corpus.py) goes through a standard Draft 2020-12
validator (``jsonschema``) and through ``schemas.decode``: their verdicts must agree, except for
the few rejections ``DECODER_ONLY`` lists (README, *the decoder's extra checks*). Where the two
could differ on values a partner's code might produce by mistake, the schema may be stricter
than the decoder, never looser.

The validator reads JSON as the specifications do: numbers exactly (decimals, not binary floats:
``multipleOf: 0.01`` holds for 0.07) and ``$`` as the end of the text (ECMA-262; Python's ``re``
also lets it match before a final newline).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from decimal import Decimal
from fractions import Fraction
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, ValidationError, validators
from wire_corpus import (
    BAD,
    DECODER_ONLY,
    GOOD,
    ODD_AMOUNT_NUMBERS,
    ODD_AMOUNT_STRINGS,
    ODD_CURRENCIES,
    ODD_IPS,
    ODD_TIMESTAMPS,
    bank_transaction,
    encoded,
    telecom_event,
)

from schemas.decode import (
    Rejection,
    decode_action_ack,
    decode_bank_transaction,
    decode_release_request,
    decode_telecom_event,
    decode_victim_report,
)

SCHEMAS = Path(__file__).resolve().parents[3] / "schemas" / "json"
MAX_BYTES = 1 << 20
DECODERS: dict[str, Callable[[bytes], object]] = {
    "bank-transactions": lambda raw: decode_bank_transaction(raw, MAX_BYTES),
    "victim-reports": lambda raw: decode_victim_report(raw, MAX_BYTES, received_at_ms=0),
    "telecom-events": lambda raw: decode_telecom_event(raw, MAX_BYTES),
    "action-acks": lambda raw: decode_action_ack(raw, MAX_BYTES, received_at_ms=0),
    "release-requests": lambda raw: decode_release_request(raw, MAX_BYTES, received_at_ms=0, authenticated_as="kbank"),
}


def _exact_multiple(validator: Any, divisor: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if validator.is_type(instance, "number") and Fraction(instance) % Fraction(divisor):
        yield ValidationError(f"{instance} is not a multiple of {divisor}")


def _ecma_pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and _ecma(pattern).search(instance) is None:
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


@cache
def _ecma(pattern: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"\$(?=\)*$)", r"\\Z", pattern))


def _is_integer(checker: Any, instance: object) -> bool:
    # Draft 2020-12: any number with a zero fractional part, 2.0 included.
    return not isinstance(instance, bool) and isinstance(instance, int | Decimal) and instance == int(instance)


ExactValidator = validators.extend(
    Draft202012Validator,
    validators={"multipleOf": _exact_multiple, "pattern": _ecma_pattern},
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_integer),
)


@cache
def validator(topic: str) -> Any:
    schema = json.loads((SCHEMAS / f"{topic}.schema.json").read_text(encoding="utf-8"), parse_float=Decimal)
    ExactValidator.check_schema(schema)
    return ExactValidator(schema)


def schema_accepts(topic: str, raw: bytes) -> bool:
    return validator(topic).is_valid(json.loads(raw, parse_float=Decimal))


def decoder_accepts(topic: str, raw: bytes) -> bool:
    return not isinstance(DECODERS[topic](raw), Rejection)


GOOD_CASES = [(topic, message) for topic, messages in GOOD.items() for message in messages]
BAD_CASES = [(topic, name, message) for topic, corpus in BAD.items() for name, (message, _) in corpus.items()]


@pytest.mark.parametrize(("topic", "message"), GOOD_CASES)
def test_every_message_the_decoder_accepts_the_schema_accepts(topic: str, message: object) -> None:
    raw = encoded(message)

    assert decoder_accepts(topic, raw)
    assert schema_accepts(topic, raw), next(iter(validator(topic).iter_errors(json.loads(raw))), None)


@pytest.mark.parametrize(("topic", "name", "message"), BAD_CASES, ids=[f"{t}: {n}" for t, n, _ in BAD_CASES])
def test_every_message_the_decoder_rejects_the_schema_rejects(topic: str, name: str, message: object) -> None:
    raw = encoded(message)

    assert not decoder_accepts(topic, raw)
    # A rejection only the decoder can make is listed; the schema must still accept the message,
    # so the list (and the README's) stays exactly what the schema cannot say.
    assert schema_accepts(topic, raw) == ((topic, name) in DECODER_ONLY)


def test_every_topic_a_partner_sends_on_has_a_corpus() -> None:
    assert (
        set(GOOD)
        == set(BAD)
        == set(DECODERS)
        == {path.name.removesuffix(".schema.json") for path in SCHEMAS.iterdir() if _is_input(path)}
    )


def _is_input(path: Path) -> bool:
    # Output topics are described as serialized (every field required, no extra fields).
    return json.loads(path.read_text(encoding="utf-8")).get("additionalProperties") is not False


def odd_variants() -> Iterator[tuple[str, bytes]]:
    base = encoded(bank_transaction(amount=1))
    for amount in ODD_AMOUNT_STRINGS:
        yield "bank-transactions", encoded(bank_transaction(amount=amount))
        yield "bank-transactions", encoded(bank_transaction(amount=amount, currency="JPY"))
    for number in ODD_AMOUNT_NUMBERS:
        for currency in (b"THB", b"JPY", b"ETH"):
            yield "bank-transactions", base.replace(b'"amount": 1', b'"amount": ' + number).replace(b"THB", currency)
    for at in ODD_TIMESTAMPS:
        yield "bank-transactions", encoded(bank_transaction(executed_at=at))
    for currency in ODD_CURRENCIES:
        yield "bank-transactions", encoded(bank_transaction(currency=currency))
    for ip in ODD_IPS:
        yield "telecom-events", encoded(telecom_event(kind="data_session", ip=ip))


@pytest.mark.parametrize(("topic", "raw"), list(odd_variants()))
def test_the_schema_is_never_looser_than_the_decoder_on_odd_values(topic: str, raw: bytes) -> None:
    if schema_accepts(topic, raw):
        assert decoder_accepts(topic, raw)


@given(st.from_regex(r"[ +\-0-9.eE_]{0,22}", fullmatch=True), st.sampled_from(["THB", "JPY", "KWD", "BTC", "XYZ"]))
def test_no_decimal_string_the_schema_accepts_is_refused(amount: str, currency: str) -> None:
    raw = encoded(bank_transaction(amount=amount, currency=currency))

    if schema_accepts("bank-transactions", raw):
        assert decoder_accepts("bank-transactions", raw)


@given(st.ip_addresses().map(str) | st.ip_addresses(v=6).map(lambda ip: ip.exploded))
def test_every_ip_address_is_accepted_by_both(ip: str) -> None:
    raw = encoded(telecom_event(kind="data_session", ip=ip))

    assert decoder_accepts("telecom-events", raw)
    assert schema_accepts("telecom-events", raw)


@given(st.from_regex(r"[0-9a-fA-F:.]{0,41}", fullmatch=True))
def test_no_ip_text_the_schema_accepts_is_refused(ip: str) -> None:
    raw = encoded(telecom_event(kind="data_session", ip=ip))

    if schema_accepts("telecom-events", raw):
        assert decoder_accepts("telecom-events", raw)


NEAR_TIMESTAMPS = (
    r"[0-9]{4}-[01][0-9]-[0-3][0-9][T ][0-2][0-9]:[0-6][0-9]:[0-6][0-9](\.[0-9]{1,7})?(Z|[+-][0-2][0-9]:[0-6][0-9])"
)


@given(st.from_regex(NEAR_TIMESTAMPS, fullmatch=True))
def test_no_timestamp_the_schema_accepts_is_refused_but_in_common_years_29_february(at: str) -> None:
    raw = encoded(bank_transaction(executed_at=at))

    if schema_accepts("bank-transactions", raw) and not decoder_accepts("bank-transactions", raw):
        assert at[5:10] == "02-29"
