"""Signatures on every action and warning, so an institution can prove to anyone that an order came from us.

Each signed message carries two top-level members:

- ``kid``: which key signed it. For Ed25519 (the default) it is the RFC 7638 thumbprint of the
  war room's public key, as listed in the JWKS file ``interceptor keys`` writes (``jwks.json``);
- ``signature``: ``ed25519=<base64url, unpadded>``, the Ed25519 signature of the message's
  canonical encoding. With ``signing_algorithm = hmac`` it is ``hmac-sha256=<hex>`` instead,
  keyed with the addressee's shared key (``kid`` is then the addressee's name, or ``default``);
  a shared key proves nothing to a third party, so HMAC is only an option.

Institutions sign their acks the same way with their own Ed25519 keys (README, *Acks*).

The canonical encoding, reproducible in any language from the JSON as received:

1. Parse the message. Drop the top-level ``signature`` member (only the top-level one): ``kid``
   stays, so the signature covers which key made it.
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
3. Encode that text as UTF-8 and sign those bytes.

A consumer in Python (the README shows the same lines, and a test runs them from there)::

    import base64, json
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    def verify(raw: bytes, jwks: dict) -> bool:
        message = json.loads(raw)
        scheme, _, signature = message.pop("signature", "").partition("=")
        key = next((k for k in jwks["keys"] if k.get("kid") == message.get("kid")), None)
        if scheme != "ed25519" or key is None or key.get("crv") != "Ed25519":
            return False
        canonical = json.dumps(message, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        public_key = Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(key["x"] + "=="))
        try:
            public_key.verify(base64.urlsafe_b64decode(signature + "=="), canonical)
        except InvalidSignature:
            return False
        return True

``verify_ed25519`` below is stricter than those lines: it also refuses a message with a repeated
key (two parsers could read different values from it), a float or a non-finite number, and never
raises on garbage.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

HMAC_PREFIX = "hmac-sha256="
ED25519_PREFIX = "ed25519="
_HMAC_SIGNATURE = re.compile(r"hmac-sha256=[0-9a-f]{64}")
_ED25519_SIGNATURE = re.compile(r"ed25519=[A-Za-z0-9_-]{86}")  # 64 bytes, base64url without padding
# The key anyone can read in this repository: demos, benches and tests only. A worker refuses it
# unless told otherwise (``insecure_dev_keys``), so a forgotten key never signs real orders.
DEVELOPMENT_SEED = hashlib.sha256(b"interceptor-development-key").digest()


def canonical_bytes(message: Mapping[str, Any]) -> bytes:
    """The bytes a signature covers: the message without ``signature``, as canonical JSON (see above).

    The message's values are not inspected for floats (that would double the cost of signing);
    the output schemas have none, and ``tests/unit/schemas/test_signing.py`` keeps it so.
    Raises ``ValueError`` for NaN or infinity and ``TypeError`` for a value JSON cannot carry.
    """
    unsigned = {k: v for k, v in message.items() if k != "signature"}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode(
        "utf-8"
    )


# ---- Ed25519: the default, verifiable by anyone holding the public key ----


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _from_b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def public_jwk(public_key: Ed25519PublicKey) -> dict[str, str]:
    """The public key as a JWK (RFC 8037), with its thumbprint as ``kid``."""
    x = b64url(public_key.public_bytes(Encoding.Raw, PublicFormat.Raw))
    return {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": jwk_thumbprint(x), "alg": "EdDSA", "use": "sig"}


def jwk_thumbprint(x: str) -> str:
    """RFC 7638 thumbprint of an Ed25519 JWK: the same kid whoever computes it from the public key."""
    required = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": x}, sort_keys=True, separators=(",", ":"))
    return b64url(hashlib.sha256(required.encode()).digest())


def public_keys_from_jwks(jwks: Mapping[str, Any], source: str) -> dict[str, Ed25519PublicKey]:
    """``kid`` -> key for every key of a JWKS; raises ``ValueError`` naming ``source`` for anything else."""
    keys = jwks.get("keys") if isinstance(jwks, Mapping) else None
    if not isinstance(keys, list):
        raise ValueError(f"{source}: a JWKS is an object with a 'keys' list")
    found: dict[str, Ed25519PublicKey] = {}
    for index, jwk in enumerate(keys):
        where = f"{source}: keys[{index}]"
        if not isinstance(jwk, Mapping) or jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
            raise ValueError(f"{where}: only OKP keys on curve Ed25519 are supported")
        kid, x = jwk.get("kid"), jwk.get("x")
        if not isinstance(kid, str) or not kid or not isinstance(x, str):
            raise ValueError(f"{where}: needs a string 'kid' and 'x'")
        try:
            found[kid] = Ed25519PublicKey.from_public_bytes(_from_b64url(x))
        except (ValueError, binascii.Error) as error:
            raise ValueError(f"{where}: 'x' is not a base64url Ed25519 public key ({error})") from None
    return found


def output_canonical_bytes(message: Mapping[str, Any]) -> bytes:
    """``canonical_bytes`` of the pipeline's own output, by orjson: about ten times faster.

    The same bytes for every value the output schemas carry (text, integers, booleans, null, lists
    and objects; no floats, which orjson would print differently and NaN as null:
    ``test_signed_actions_have_no_float_fields``). A property test holds it to ``canonical_bytes``.
    """
    return orjson.dumps({k: v for k, v in message.items() if k != "signature"}, option=orjson.OPT_SORT_KEYS)


def ed25519_signature(
    message: Mapping[str, Any],
    private_key: Ed25519PrivateKey,
    canonical: Callable[[Mapping[str, Any]], bytes] = canonical_bytes,
) -> str:
    """The ``signature`` value: ``ed25519=`` and the base64url signature of the canonical bytes."""
    return ED25519_PREFIX + b64url(private_key.sign(canonical(message)))


def verify_ed25519(message: Mapping[str, Any] | bytes | str, public_keys: Mapping[str, Ed25519PublicKey]) -> bool:
    """True only if the message names a ``kid`` in ``public_keys`` and its signature matches that key.

    Accepts the parsed message or the raw one (UTF-8 bytes or text). Never raises on bad input:
    unparsable JSON, a missing or malformed signature or kid, a non-object message and, in a raw
    message, a repeated key, a float or a non-finite number are all simply False.
    """
    try:
        parsed = _parse(message) if isinstance(message, bytes | str) else message
        if not isinstance(parsed, Mapping):
            return False
        claimed, kid = parsed.get("signature"), parsed.get("kid")
        if not isinstance(claimed, str) or _ED25519_SIGNATURE.fullmatch(claimed) is None or not isinstance(kid, str):
            return False
        key = public_keys.get(kid)
        if key is None:
            return False
        key.verify(_from_b64url(claimed.removeprefix(ED25519_PREFIX)), canonical_bytes(parsed))
    except (ValueError, TypeError, RecursionError, InvalidSignature):  # JSON and UTF-8 errors are ValueErrors
        return False
    return True


# ---- HMAC-SHA256: the option, for partners who cannot yet verify Ed25519 ----


def hmac_signature(message: Mapping[str, Any], key: bytes) -> str:
    """The ``signature`` value under a shared key: ``hmac-sha256=`` and the lower-case hex digest."""
    return HMAC_PREFIX + hmac.new(key, canonical_bytes(message), hashlib.sha256).hexdigest()


def verify_hmac(message: Mapping[str, Any] | bytes | str, key: bytes) -> bool:
    """As ``verify_ed25519``, for an HMAC-signed message under ``key``."""
    try:
        parsed = _parse(message) if isinstance(message, bytes | str) else message
        if not isinstance(parsed, Mapping):
            return False
        claimed = parsed.get("signature")
        if not isinstance(claimed, str) or _HMAC_SIGNATURE.fullmatch(claimed) is None:
            return False
        expected = hmac_signature(parsed, key)
    except (ValueError, TypeError, RecursionError):
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


# ---- Signers: what the publisher holds ----


class Signer(Protocol):
    """Puts ``kid`` and ``signature`` on an outgoing message for one addressee."""

    def kid_for(self, addressee: str) -> str: ...

    def signature(self, message: Mapping[str, Any], addressee: str) -> str: ...


@dataclass(frozen=True)
class Ed25519Signer:
    """The war room's one signing key: every addressee verifies with the same public key."""

    private_key: Ed25519PrivateKey = field(repr=False)
    kid: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kid", public_jwk(self.private_key.public_key())["kid"])

    @classmethod
    def development(cls) -> Ed25519Signer:
        return cls(Ed25519PrivateKey.from_private_bytes(DEVELOPMENT_SEED))

    @property
    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return {"keys": [public_jwk(self.private_key.public_key())]}

    def kid_for(self, addressee: str) -> str:
        return self.kid

    def signature(self, message: Mapping[str, Any], addressee: str) -> str:
        """Of an action, warning or answer: validated output, so the fast canonical form is exact."""
        return ed25519_signature(message, self.private_key, output_canonical_bytes)

    def signed(self, message: Mapping[str, Any]) -> dict[str, Any]:
        """The message with this key's ``kid`` and its signature: how an institution signs an ack."""
        with_kid = {**message, "kid": self.kid}
        return {**with_kid, "signature": ed25519_signature(with_kid, self.private_key)}


@dataclass(frozen=True)
class HmacSigner:
    """Shared keys per addressee; ``kid`` names the addressee whose own key signed, or ``default``."""

    keys: SigningKeys

    def kid_for(self, addressee: str) -> str:
        return addressee if addressee in self.keys.keys else "default"

    def signature(self, message: Mapping[str, Any], addressee: str) -> str:
        return hmac_signature(message, self.keys.for_addressee(addressee))


def _parse(raw: bytes | str) -> Any:
    text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    return json.loads(text, object_pairs_hook=_object_without_repeats, parse_float=_refuse, parse_constant=_refuse)


def _object_without_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("a key appears twice in one object")
    return result


def _refuse(text: str) -> Any:
    raise ValueError(f"{text} is not allowed in a signed message: no floats or non-finite numbers")
