"""Action signatures (schemas/signing.py): what a partner verifies, in any language, from the bytes received."""

from __future__ import annotations

import copy
import inspect
import json
import re
import shutil
import subprocess
import textwrap
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

import schemas.signing
from pipeline.encode import signed_json
from schemas.actions import FreezeAction, SuspensionAction, TrailStep, VictimWarning
from schemas.events import AccountRef
from schemas.signing import (
    Ed25519Signer,
    HmacSigner,
    SigningKeys,
    canonical_bytes,
    hmac_signature,
    jwk_thumbprint,
    public_jwk,
    public_keys_from_jwks,
    verify_ed25519,
    verify_hmac,
)

WAR_ROOM = Ed25519Signer(Ed25519PrivateKey.generate())
OLD_KEY = Ed25519Signer(Ed25519PrivateKey.generate())
JWKS = {"keys": [public_jwk(WAR_ROOM.private_key.public_key()), public_jwk(OLD_KEY.private_key.public_key())]}
PUBLIC_KEYS = public_keys_from_jwks(JWKS, "test")
KBANK_KEY = b"kbank-secret-key"
SCB_KEY = b"scb-secret-key"
KEYS = SigningKeys(keys={"KBANK": KBANK_KEY, "SCB": SCB_KEY}, default=b"shared-default-key")
README = Path(__file__).parents[3] / "README.md"


def readme_consumer() -> str:
    """The Python verifier exactly as the README shows it: the block defining ``verify(raw, jwks)``."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.DOTALL)
    found = [block for block in blocks if "def verify(raw: bytes, jwks: dict)" in block]
    assert len(found) == 1, "the README shows one Ed25519 verifier"
    return str(found[0])


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
        "kid": "",
        "signature": "",
    }
    fields.update(changes)
    return FreezeAction(**fields).model_dump(mode="json")


def signed(action: dict[str, Any], signer: Ed25519Signer = WAR_ROOM) -> dict[str, Any]:
    """The action as the publisher signs it: ``kid`` first, then the signature over everything else."""
    with_kid = {**action, "kid": signer.kid}
    return {**with_kid, "signature": signer.signature(with_kid, "KBANK")}


def wire(action: dict[str, Any]) -> bytes:
    """The bytes on the topic, the way pydantic writes them: source order, ASCII escapes off."""
    return json.dumps(action, ensure_ascii=False).encode()


def test_a_signed_action_verifies_from_the_parsed_action_and_from_the_bytes_received() -> None:
    action = signed(freeze_action())

    assert re.fullmatch(r"ed25519=[A-Za-z0-9_-]{86}", action["signature"])
    assert action["kid"] == JWKS["keys"][0]["kid"] == jwk_thumbprint(JWKS["keys"][0]["x"])
    assert verify_ed25519(action, PUBLIC_KEYS)
    assert verify_ed25519(wire(action), PUBLIC_KEYS)
    assert verify_ed25519(wire(action).decode(), PUBLIC_KEYS)


def test_the_kid_is_the_rfc_7638_thumbprint_of_the_public_key() -> None:
    # RFC 8037 appendix A.3: the thumbprint of its Ed25519 example key.
    assert (
        jwk_thumbprint("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo") == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    )


def test_the_signature_field_is_not_part_of_what_is_signed_and_the_kid_is() -> None:
    action = signed(freeze_action())

    assert canonical_bytes(action) == canonical_bytes({**action, "signature": "anything"})
    assert b'"kid":"' + WAR_ROOM.kid.encode() in canonical_bytes(action)
    # A signature moved under the other listed key's kid does not verify under that key.
    assert not verify_ed25519({**action, "kid": OLD_KEY.kid}, PUBLIC_KEYS)


def test_an_action_signed_by_the_old_key_verifies_while_the_jwks_lists_it() -> None:
    action = signed(freeze_action(), OLD_KEY)

    assert verify_ed25519(wire(action), PUBLIC_KEYS)
    assert not verify_ed25519(wire(action), public_keys_from_jwks({"keys": JWKS["keys"][:1]}, "after retiring"))


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
    assert not verify_ed25519(forged, PUBLIC_KEYS)
    assert not verify_ed25519(wire(forged), PUBLIC_KEYS)


def test_a_key_the_jwks_does_not_list_does_not_verify() -> None:
    stranger = Ed25519Signer(Ed25519PrivateKey.generate())
    forged = signed(freeze_action(), stranger)

    assert not verify_ed25519(wire(forged), PUBLIC_KEYS)
    assert not verify_ed25519(wire({**forged, "kid": WAR_ROOM.kid}), PUBLIC_KEYS)


def test_with_hmac_chosen_another_addressees_key_does_not_verify() -> None:
    action = freeze_action()
    action = {**action, "signature": hmac_signature(action, KEYS.for_addressee("KBANK"))}

    assert action["signature"].startswith("hmac-sha256=")
    assert verify_hmac(wire(action), KEYS.for_addressee("KBANK"))
    assert not verify_hmac(wire(action), KEYS.for_addressee("SCB"))
    assert not verify_hmac(wire(action), KEYS.for_addressee("TRUEMONEY"))
    assert not verify_ed25519(wire(action), PUBLIC_KEYS), "an HMAC signature is not an Ed25519 one"
    assert (HmacSigner(KEYS).kid_for("KBANK"), HmacSigner(KEYS).kid_for("AIS")) == ("KBANK", "default")


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
    assert verify_ed25519(reformatted, PUBLIC_KEYS)


def test_thai_text_round_trips_and_is_signed_as_utf_8() -> None:
    thai = "ผู้เสียหายโอนเงินให้มิจฉาชีพ 15,000 บาท"
    action = signed(freeze_action(reasons=[thai]))

    assert thai.encode() in canonical_bytes(action)
    assert verify_ed25519(wire(action), PUBLIC_KEYS)
    assert json.loads(wire(action))["reasons"] == [thai]
    assert not verify_ed25519(wire({**action, "reasons": [thai.replace("15,000", "150,000")]}), PUBLIC_KEYS)


def test_the_canonical_encoding_is_the_one_the_docstring_describes() -> None:
    text = 'x/\u007f"\\\b\f\n\r\t\u0001\u001fก'
    action = {"b": [1, -2, True, None], "a": {"y": text, "x": False}, "signature": "s"}
    expected = '{"a":{"x":false,"y":"x/\u007f\\"\\\\\\b\\f\\n\\r\\t\\u0001\\u001fก"},"b":[1,-2,true,null]}'

    assert canonical_bytes(action) == expected.encode("utf-8")


ED25519_ZEROS = "ed25519=" + "A" * 86


@pytest.mark.parametrize(
    "garbage",
    [
        b"",
        b"not json",
        b"\xff\xfe\x00garbage",
        b"[1, 2, 3]",
        b"null",
        b'"ed25519=00"',
        b"{}",
        b'{"action_id": "frz-1"}',
        b'{"action_id": "frz-1", "signature": null}',
        b'{"action_id": "frz-1", "signature": 42}',
        b'{"action_id": "frz-1", "signature": "hmac-sha256=zz"}',
        b'{"action_id": "frz-1", "signature": "' + ED25519_ZEROS.encode() + b'"}',
        b'{"action_id": "frz-1", "kid": 7, "signature": "' + ED25519_ZEROS.encode() + b'"}',
        b'{"action_id": "frz-1", "kid": "nobody", "signature": "' + ED25519_ZEROS.encode() + b'"}',
        b'{"action_id": "frz-1", "kid": "'
        + WAR_ROOM.kid.encode()
        + b'", "signature": "'
        + ED25519_ZEROS.encode()
        + b'"}',
        b'{"action_id": "frz-1", "signature": "ed25519=' + b"\xc3\xa9" * 43 + b'"}',
        b'{"action_id": "frz-1", "signature": "hmac-sha256=' + b"\xc3\xa9" * 32 + b'"}',
        b"[" * 100_000 + b"]" * 100_000,
        '{"action_id": "frz-1", "signature": "ed25519=\\ud800"}',
    ],
)
def test_verify_says_false_to_garbage_and_never_raises(garbage: bytes | str) -> None:
    assert verify_ed25519(garbage, PUBLIC_KEYS) is False
    assert verify_hmac(garbage, KBANK_KEY) is False


def test_verify_says_false_to_a_mapping_json_cannot_carry() -> None:
    base = {"kid": WAR_ROOM.kid, "signature": ED25519_ZEROS}
    int_key: dict[Any, Any] = {**base, 1: "int key", "b": 2}
    assert verify_ed25519(int_key, PUBLIC_KEYS) is False
    assert verify_ed25519({**base, "amount": float("nan")}, PUBLIC_KEYS) is False
    assert verify_ed25519({**base, "ids": {"a", "b"}}, PUBLIC_KEYS) is False
    assert verify_ed25519({**base, "text": "\ud800"}, PUBLIC_KEYS) is False


def test_a_message_with_a_repeated_key_is_refused_even_with_a_valid_signature() -> None:
    # Parsers disagree on which "priority" wins; the signature must not vouch for either.
    action = signed(freeze_action())
    raw = wire(action).decode()
    doubled = raw.replace('"priority": 87', '"priority": 10, "priority": 87')

    assert json.loads(doubled) == action
    assert verify_ed25519(raw, PUBLIC_KEYS)
    assert not verify_ed25519(doubled, PUBLIC_KEYS)


def test_a_message_with_a_float_is_refused() -> None:
    action = signed(freeze_action())
    raw = wire(action).decode().replace('"priority": 87', '"priority": 87.0')

    assert not verify_ed25519(raw, PUBLIC_KEYS)


@pytest.mark.parametrize(
    ("jwks", "problem"),
    [
        ({}, "a 'keys' list"),
        ({"keys": [{"kty": "RSA", "kid": "r", "n": "x", "e": "AQAB"}]}, "only OKP keys on curve Ed25519"),
        ({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "abc"}]}, "needs a string 'kid'"),
        ({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "k", "x": "abc"}]}, "not a base64url Ed25519 public key"),
    ],
)
def test_a_jwks_we_cannot_use_is_refused_with_the_reason(jwks: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        public_keys_from_jwks(jwks, "institution-keys.json")


def _readme_verify() -> Callable[[bytes, dict[str, Any]], bool]:
    namespace: dict[str, Any] = {}
    exec(compile(readme_consumer(), "README.md", "exec"), namespace)
    function: Callable[[bytes, dict[str, Any]], bool] = namespace["verify"]
    return function


def test_the_readme_verifier_accepts_our_actions_and_refuses_tampered_or_foreign_ones() -> None:
    readme_verify = _readme_verify()
    action = signed(freeze_action())
    thai = signed(freeze_action(reasons=["มิจฉาชีพ"]))

    assert readme_verify(wire(action), JWKS)
    assert readme_verify(json.dumps(_reverse_keys(thai), indent=2).encode(), JWKS)
    assert readme_verify(wire(signed(freeze_action(), OLD_KEY)), JWKS)
    assert not readme_verify(wire({**action, "hold_amount": "1.00"}), JWKS)
    assert not readme_verify(wire(signed(freeze_action(), Ed25519Signer(Ed25519PrivateKey.generate()))), JWKS)
    assert not readme_verify(wire({**action, "kid": OLD_KEY.kid}), JWKS)


def test_the_readme_verifier_is_the_one_in_the_module_docstring() -> None:
    docstring = inspect.getdoc(schemas.signing) or ""

    assert textwrap.indent(readme_consumer(), "    ") in docstring + "\n"
    body = readme_consumer().split("def verify(raw: bytes, jwks: dict) -> bool:\n")[1]
    assert len(body.strip().splitlines()) <= 12, "a verifier an institution reads at a glance"


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


@pytest.mark.parametrize("model", [FreezeAction, SuspensionAction, VictimWarning])
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

    assert verify_ed25519(raw, PUBLIC_KEYS)
    assert _readme_verify()(raw, JWKS)


NODE = shutil.which("node")
NODE_VERIFIER = Path(__file__).parents[3] / "deploy" / "verify" / "verify.mjs"


@pytest.mark.skipif(NODE is None, reason="node is not installed here (CI has node 20)")
def test_the_node_verifier_agrees_with_python_on_our_actions_thai_text_included(tmp_path: Path) -> None:
    thai = "ผู้เสียหายโอนเงินให้มิจฉาชีพ 15,000 บาท"
    unsigned = {k: v for k, v in freeze_action(reasons=[thai, 'tab\t/quote" ✓ 𝄞']).items() if k != "signature"}
    action = orjson.loads(signed_json(FreezeAction, unsigned, WAR_ROOM, "KBANK"))  # the publisher's own path
    by_old_key = orjson.loads(signed_json(FreezeAction, unsigned, OLD_KEY, "KBANK"))
    messages = {
        "as published": orjson.dumps(action),
        "reformatted by another library": json.dumps(_reverse_keys(action), ensure_ascii=True).encode(),
        "signed by the old key, still listed": orjson.dumps(by_old_key),
        "tampered amount": orjson.dumps({**action, "hold_amount": "150000.00"}),
        "tampered Thai text": orjson.dumps({**action, "reasons": [thai.replace("15,000", "150,000")]}),
        "kid of the other key": orjson.dumps({**action, "kid": OLD_KEY.kid}),
        "signed by a stranger": orjson.dumps(signed(action, Ed25519Signer(Ed25519PrivateKey.generate()))),
        "a fraction": orjson.dumps(action).replace(b'"priority":87', b'"priority":87.5'),
        "not JSON": b"{not json",
    }
    (tmp_path / "jwks.json").write_text(json.dumps(JWKS))
    stdin = b"\n".join(messages.values()) + b"\n"
    node = subprocess.run(
        [str(NODE), str(NODE_VERIFIER), str(tmp_path / "jwks.json")], input=stdin, capture_output=True, check=True
    )

    in_node = dict(zip(messages, node.stdout.decode().split(), strict=True))
    in_python = {what: str(verify_ed25519(raw, PUBLIC_KEYS)).lower() for what, raw in messages.items()}
    assert in_node == in_python
    assert [what for what, verdict in in_node.items() if verdict == "true"] == [
        "as published", "reformatted by another library", "signed by the old key, still listed",
    ]  # fmt: skip
