"""Signatures on every action, so an institution can tell our orders from a forgery.

Each action carries ``"signature": "hmac-sha256=<hex>"``: HMAC-SHA256, keyed with the
addressee's own key from configuration, over the action's canonical encoding.

The canonical encoding, reproducible in any language from the JSON as received:

1. Parse the message. Drop the top-level ``signature`` member (only the top-level one).
2. Write the remaining value back as JSON with no whitespace at all:

   - object: ``{`` members ``"key":value`` joined by ``,`` ``}``, members sorted by key in
     Unicode code point order, at every depth (all our keys are ASCII field names);
   - array: ``[`` elements joined by ``,`` ``]``, in their received order;
   - string: in double quotes; ``"`` and ``\\`` become ``\\"`` and ``\\\\``; U+0008, U+0009,
     U+000A, U+000C and U+000D become ``\\b``, ``\\t``, ``\\n``, ``\\f`` and ``\\r``; any other
     character below U+0020 becomes ``\\u00xx`` (lower-case hex); every other character,
     including ``/``, U+007F and all non-ASCII text such as Thai, is written as itself;
   - integer: plain decimal digits with a leading ``-`` if negative, no exponent;
   - ``true``, ``false``, ``null``.

   Actions hold only strings, integers, arrays, objects, booleans and null: amounts are
   decimal strings and times RFC 3339 strings, so no float formatting is ever involved.
   Integers are small counts (version, priority, hop, escalation), so a parser that reads
   numbers as doubles writes them back unchanged.
3. Encode that text as UTF-8; the signature is ``hmac-sha256=`` followed by the lower-case
   hex HMAC-SHA256 of those bytes under the addressee's key.

A consumer in Python (the README shows the same lines)::

    import hashlib, hmac, json

    def verify(raw: bytes, key: bytes) -> bool:
        action = json.loads(raw)
        claimed = action.pop("signature", "")
        canonical = json.dumps(action, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        return hmac.compare_digest(claimed, "hmac-sha256=" + hmac.new(key, canonical, hashlib.sha256).hexdigest())

``verify`` below is stricter than those lines: it also refuses a message with a repeated key
(two parsers could read different values from it), a float or a non-finite number.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

PREFIX = "hmac-sha256="
_SIGNATURE = re.compile(r"hmac-sha256=[0-9a-f]{64}")


def canonical_bytes(action: Mapping[str, Any]) -> bytes:
    """The bytes a signature covers: the action without ``signature``, as canonical JSON (see above).

    The action's values are not inspected for floats (that would double the cost of signing);
    the output schemas have none, and ``tests/unit/schemas/test_signing.py`` keeps it so.
    Raises ``ValueError`` for NaN or infinity and ``TypeError`` for a value JSON cannot carry.
    """
    unsigned = {k: v for k, v in action.items() if k != "signature"}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode(
        "utf-8"
    )


def sign(action: Mapping[str, Any], key: bytes) -> str:
    """The ``signature`` value for an action: ``hmac-sha256=`` and the lower-case hex digest."""
    return PREFIX + hmac.new(key, canonical_bytes(action), hashlib.sha256).hexdigest()


def verify(action: Mapping[str, Any] | bytes | str, key: bytes) -> bool:
    """True only if the action carries a well-formed signature that matches its content under ``key``.

    Accepts the parsed action or the raw message (UTF-8 bytes or text). Never raises on bad
    input: unparsable JSON, a missing or malformed signature, a non-object message and, in a
    raw message, a repeated key, a float or a non-finite number are all simply False.
    """
    try:
        parsed = _parse(action) if isinstance(action, bytes | str) else action
        if not isinstance(parsed, Mapping):
            return False
        claimed = parsed.get("signature")
        if not isinstance(claimed, str) or _SIGNATURE.fullmatch(claimed) is None:
            return False
        expected = sign(parsed, key)
    except (ValueError, TypeError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return False
    return hmac.compare_digest(expected.encode("ascii"), claimed.encode("ascii"))


@dataclass(frozen=True)
class SigningKeys:
    """Per-addressee HMAC keys from configuration; addressees without their own key share ``default``.

    Keys are kept out of ``repr`` so a logged settings object does not leak them.
    """

    keys: Mapping[str, bytes] = field(repr=False)
    default: bytes = field(repr=False)

    def __post_init__(self) -> None:
        empty = sorted(name for name, key in self.keys.items() if not key)
        if empty or not self.default:
            named = ", ".join(empty) if empty else "the default"
            raise ValueError(f"signing keys must not be empty: {named}")

    def for_addressee(self, addressee: str) -> bytes:
        """The addressee's own key if configured, else the default key."""
        return self.keys.get(addressee, self.default)


def _parse(raw: bytes | str) -> Any:
    text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    return json.loads(text, object_pairs_hook=_object_without_repeats, parse_float=_refuse, parse_constant=_refuse)


def _object_without_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("a key appears twice in one object")
    return result


def _refuse(text: str) -> Any:
    raise ValueError(f"{text} is not allowed in an action: no floats or non-finite numbers")
