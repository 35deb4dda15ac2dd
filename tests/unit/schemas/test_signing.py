"""Action signatures (schemas/signing.py): what a partner verifies, in any language, from the bytes received."""

from __future__ import annotations

import copy
import inspect
import json
import textwrap
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

import schemas.signing
from schemas.actions import FreezeAction, SuspensionAction, TrailStep
from schemas.events import AccountRef
from schemas.signing import SigningKeys, canonical_bytes, sign, verify

KBANK_KEY = b"kbank-secret-key"
SCB_KEY = b"scb-secret-key"
KEYS = SigningKeys(keys={"KBANK": KBANK_KEY, "SCB": SCB_KEY}, default=b"shared-default-key")

# What the README shows a consumer: the same lines as in the module docstring.
README_CONSUMER = """\
import hashlib, hmac, json

def verify(raw: bytes, key: bytes) -> bool:
    action = json.loads(raw)
    claimed = action.pop("signature", "")
    canonical = json.dumps(action, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return hmac.compare_digest(claimed, "hmac-sha256=" + hmac.new(key, canonical, hashlib.sha256).hexdigest())
"""


def freeze_action(**changes: Any) -> dict[str, Any]:
    """An unsigned freeze action as the pipeline puts it on the wire, through the output schema."""
    at = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    target = AccountRef(institution="KBANK", account="123-4-56789", kind="bank")
    victim = AccountRef(institution="SCB", account="999-0-00001", kind="bank")
    fields: dict[str, Any] = {
        "action_id": "frz-0123456789abcdef01234567",
        "version": 2,
        "addressee": "KBANK",
        "status": "active",
        "target": target,
        "hold_amount": "15000.00",
        "currency": "THB",
        "priority": 87,
        "hop": 0,
        "tainted_received": "15000.00",
        "tainted_moved_on": "0.00",
        "report_ids": ["rpt-1", "rpt-2"],
        "report_ids_total": 2,
        "txn_ids": ["txn-1"],
        "txn_ids_total": 1,
        "reasons": ["received 15000.00 THB of reported money directly from the victim", "โอนเงินหลอกลวง"],
        "trail": [
            TrailStep(
                txn_id="txn-1",
                report_id="rpt-1",
                report_ids=["rpt-1", "rpt-2"],
                hop=0,
                from_account=victim,
                to_account=target,
                tainted_amount="15000.00",
                at=at,
            )
        ],
        "trail_steps_total": 1,
        "trail_digest": "sha256:" + "0" * 64,
        "issued_at": at,
        "report_received_at": at,
        "hold_expires_at": at,
        "escalation": 0,
        "signature": "",
    }
    fields.update(changes)
    return FreezeAction(**fields).model_dump(mode="json")


def signed(action: dict[str, Any], key: bytes = KBANK_KEY) -> dict[str, Any]:
    return {**action, "signature": sign(action, key)}


def wire(action: dict[str, Any]) -> bytes:
    """The bytes on the topic, the way pydantic writes them: source order, ASCII escapes off."""
    return json.dumps(action, ensure_ascii=False).encode()


def test_a_signed_action_verifies_from_the_parsed_action_and_from_the_bytes_received() -> None:
    action = signed(freeze_action())

    assert action["signature"].startswith("hmac-sha256=")
    assert len(action["signature"]) == len("hmac-sha256=") + 64
    assert verify(action, KBANK_KEY)
    assert verify(wire(action), KBANK_KEY)
    assert verify(wire(action).decode(), KBANK_KEY)


def test_the_signature_field_is_not_part_of_what_is_signed() -> None:
    action = freeze_action()

    assert canonical_bytes(action) == canonical_bytes({**action, "signature": "anything"})
    assert sign(action, KBANK_KEY) == sign(signed(action), KBANK_KEY)


def _set(path: tuple[str | int, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def tamper(action: dict[str, Any]) -> None:
        node: Any = action
        for step in path[:-1]:
            node = node[step]
        node[path[-1]] = value

    return tamper


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(_set(("hold_amount",), "150000.00"), id="hold_amount"),
        pytest.param(_set(("priority",), 100), id="priority"),
        pytest.param(_set(("status",), "released"), id="status"),
        pytest.param(_set(("target", "account"), "123-4-00000"), id="nested target.account"),
        pytest.param(_set(("report_ids", 1), "rpt-3"), id="list element"),
        pytest.param(_set(("trail", 0, "tainted_amount"), "1.00"), id="element of a list of objects"),
        pytest.param(lambda a: a["report_ids"].reverse(), id="list order"),
        pytest.param(lambda a: a["txn_ids"].append("txn-2"), id="list element added"),
        pytest.param(lambda a: a.pop("hold_expires_at"), id="field removed"),
        pytest.param(_set(("note",), "please also freeze 555"), id="field added"),
        pytest.param(_set(("version",), "2"), id="int sent as a string"),
    ],
)
def test_a_tampered_action_fails_verification(tamper: Callable[[dict[str, Any]], None]) -> None:
    action = signed(freeze_action())
    forged = copy.deepcopy(action)
    tamper(forged)

    assert forged != action
    assert not verify(forged, KBANK_KEY)
    assert not verify(wire(forged), KBANK_KEY)


def test_another_addressees_key_does_not_verify() -> None:
    action = signed(freeze_action(), KEYS.for_addressee("KBANK"))

    assert verify(wire(action), KEYS.for_addressee("KBANK"))
    assert not verify(wire(action), KEYS.for_addressee("SCB"))
    assert not verify(wire(action), KEYS.for_addressee("TRUEMONEY"))


def test_each_addressee_has_its_own_key_and_the_rest_share_the_default() -> None:
    assert KEYS.for_addressee("KBANK") == KBANK_KEY
    assert KEYS.for_addressee("SCB") == SCB_KEY
    assert KEYS.for_addressee("TRUEMONEY") == KEYS.for_addressee("AIS") == b"shared-default-key"


def test_keys_stay_out_of_logs_and_empty_keys_are_a_configuration_error() -> None:
    assert "secret" not in repr(KEYS)
    with pytest.raises(ValueError, match="SCB"):
        SigningKeys(keys={"KBANK": KBANK_KEY, "SCB": b""}, default=b"default")
    with pytest.raises(ValueError, match="default"):
        SigningKeys(keys={}, default=b"")


def _reverse_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _reverse_keys(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [_reverse_keys(v) for v in value]
    return value


def test_key_order_escapes_and_whitespace_of_the_received_json_do_not_matter() -> None:
    action = signed(freeze_action())
    # Another JSON library: keys in another order at every depth, indented, non-ASCII as \u escapes.
    reformatted = json.dumps(_reverse_keys(action), indent=4, ensure_ascii=True).encode()

    assert reformatted != wire(action)
    assert b"\\u0e42" in reformatted
    assert verify(reformatted, KBANK_KEY)


def test_thai_text_round_trips_and_is_signed_as_utf_8() -> None:
    thai = "ผู้เสียหายโอนเงินให้มิจฉาชีพ 15,000 บาท"
    action = signed(freeze_action(reasons=[thai]))

    assert thai.encode() in canonical_bytes(action)
    assert verify(wire(action), KBANK_KEY)
    assert json.loads(wire(action))["reasons"] == [thai]
    assert not verify(wire({**action, "reasons": [thai.replace("15,000", "150,000")]}), KBANK_KEY)


def test_the_canonical_encoding_is_the_one_the_docstring_describes() -> None:
    text = 'x/\u007f"\\\b\f\n\r\t\u0001\u001fก'
    action = {"b": [1, -2, True, None], "a": {"y": text, "x": False}, "signature": "s"}
    expected = '{"a":{"x":false,"y":"x/\u007f\\"\\\\\\b\\f\\n\\r\\t\\u0001\\u001fก"},"b":[1,-2,true,null]}'

    assert canonical_bytes(action) == expected.encode("utf-8")


@pytest.mark.parametrize(
    "garbage",
    [
        b"",
        b"not json",
        b"\xff\xfe\x00garbage",
        b"[1, 2, 3]",
        b"null",
        b'"hmac-sha256=00"',
        b"{}",
        b'{"action_id": "frz-1"}',
        b'{"action_id": "frz-1", "signature": null}',
        b'{"action_id": "frz-1", "signature": 42}',
        b'{"action_id": "frz-1", "signature": "hmac-sha256=zz"}',
        b'{"action_id": "frz-1", "signature": "sha256=' + b"0" * 64 + b'"}',
        b'{"action_id": "frz-1", "signature": "hmac-sha256=' + b"\xc3\xa9" * 32 + b'"}',
        b"[" * 100_000 + b"]" * 100_000,
        '{"action_id": "frz-1", "signature": "hmac-sha256=\\ud800"}',
    ],
)
def test_verify_says_false_to_garbage_and_never_raises(garbage: bytes | str) -> None:
    assert verify(garbage, KBANK_KEY) is False


def test_verify_says_false_to_a_mapping_json_cannot_carry() -> None:
    signature = "hmac-sha256=" + "0" * 64
    int_key: dict[Any, Any] = {"signature": signature, 1: "int key", "b": 2}
    assert verify(int_key, KBANK_KEY) is False
    assert verify({"signature": signature, "amount": float("nan")}, KBANK_KEY) is False
    assert verify({"signature": signature, "ids": {"a", "b"}}, KBANK_KEY) is False
    assert verify({"signature": signature, "text": "\ud800"}, KBANK_KEY) is False


def test_a_message_with_a_repeated_key_is_refused_even_with_a_valid_signature() -> None:
    # Parsers disagree on which "priority" wins; the signature must not vouch for either.
    action = signed(freeze_action())
    raw = wire(action).decode()
    doubled = raw.replace('"priority": 87', '"priority": 10, "priority": 87')

    assert json.loads(doubled) == action
    assert verify(raw, KBANK_KEY)
    assert not verify(doubled, KBANK_KEY)


def test_a_message_with_a_float_is_refused() -> None:
    action = signed(freeze_action())
    raw = wire(action).decode().replace('"priority": 87', '"priority": 87.0')

    assert not verify(raw, KBANK_KEY)


def _readme_verify() -> Callable[[bytes, bytes], bool]:
    namespace: dict[str, Any] = {}
    exec(compile(README_CONSUMER, "README.md", "exec"), namespace)
    function: Callable[[bytes, bytes], bool] = namespace["verify"]
    return function


def test_the_readme_consumer_verifies_our_actions() -> None:
    readme_verify = _readme_verify()
    action = signed(freeze_action())
    thai = signed(freeze_action(reasons=["มิจฉาชีพ"]))

    assert readme_verify(wire(action), KBANK_KEY)
    assert readme_verify(json.dumps(_reverse_keys(thai), indent=2).encode(), KBANK_KEY)
    assert not readme_verify(wire({**action, "hold_amount": "1.00"}), KBANK_KEY)
    assert not readme_verify(wire(action), SCB_KEY)


def test_the_readme_consumer_is_the_one_in_the_readme_and_the_module_docstring() -> None:
    readme = (Path(__file__).parents[3] / "README.md").read_text(encoding="utf-8")
    docstring = inspect.getdoc(schemas.signing) or ""

    assert f"```python\n{README_CONSUMER}```" in readme
    assert textwrap.indent(README_CONSUMER, "    ") in docstring + "\n"


def _number_types(schema: Any) -> list[str]:
    """Every JSON Schema ``number`` type in a schema, with where it is."""
    found: list[str] = []
    if isinstance(schema, dict):
        kind = schema.get("type")
        if kind == "number" or (isinstance(kind, list) and "number" in kind):
            found.append(str(schema.get("title", schema)))
        for value in schema.values():
            found.extend(_number_types(value))
    elif isinstance(schema, list):
        for value in schema:
            found.extend(_number_types(value))
    return found


@pytest.mark.parametrize("model", [FreezeAction, SuspensionAction])
def test_signed_actions_have_no_float_fields(model: type[BaseModel]) -> None:
    # Floats print differently across languages; canonical_bytes relies on there being none.
    assert _number_types(model.model_json_schema()) == []


# Any text a JSON message can carry: everything but lone surrogates, which UTF-8 cannot encode.
text = st.text(st.characters(codec="utf-8"))
keys = st.text(st.characters(codec="utf-8"), max_size=8)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1) | text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(keys, json_values, max_size=6), st.booleans(), st.booleans())
def test_any_action_verifies_however_the_json_is_rewritten(
    action: dict[str, Any], ascii_only: bool, reverse: bool
) -> None:
    message = signed(action)
    rewritten = _reverse_keys(message) if reverse else message
    raw = json.dumps(rewritten, ensure_ascii=ascii_only, indent=1 if reverse else None).encode()

    assert verify(raw, KBANK_KEY)
    assert _readme_verify()(raw, KBANK_KEY)
