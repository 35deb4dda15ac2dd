"""The war room's signing keys on disk, the institutions' public keys, and the refusal to sign with a public key.

``interceptor keys DIR`` keeps a key directory:

- ``jwks.json``: the public keys, newest first. Publish it: institutions verify with it, offline;
- ``<kid>.pem``: each private key (PKCS #8, readable by the owner only);
- ``current``: the kid of the key that signs.

Rotation: running it again adds a new key, which signs from the next worker start, while the old
one stays in ``jwks.json`` so actions already issued still verify. At most two keys are listed;
``--retire KID`` removes the old one once every institution has fetched the new JWKS.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from pipeline.errors import InterceptorError
from pipeline.settings import DEVELOPMENT_HMAC_KEY, DEVELOPMENT_PSEUDONYM_KEY, Settings
from schemas.signing import Ed25519Signer, HmacSigner, Signer, public_jwk, public_keys_from_jwks

JWKS_FILE = "jwks.json"
CURRENT_FILE = "current"
MAX_LISTED_KEYS = 2
InstitutionKeys = dict[str, dict[str, Ed25519PublicKey]]


class KeyConfigError(InterceptorError):
    """A key directory or registry that cannot be used as it is."""


def generate_key(directory: Path) -> str:
    """A new signing key in ``directory``, listed first in its JWKS and made current; returns its kid."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    listed = _read_jwks(directory)["keys"]
    if len(listed) >= MAX_LISTED_KEYS:
        kids = ", ".join(key["kid"] for key in listed)
        raise KeyConfigError(
            f"{directory / JWKS_FILE} already lists {len(listed)} keys ({kids}); retire the old one first: "
            f"interceptor keys {directory} --retire KID"
        )
    private_key = Ed25519PrivateKey.generate()
    jwk = public_jwk(private_key.public_key())
    pem = private_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    _write(directory / f"{jwk['kid']}.pem", pem, mode=0o600)
    _write(directory / JWKS_FILE, _json({"keys": [jwk, *listed]}), mode=0o644)
    _write(directory / CURRENT_FILE, jwk["kid"].encode() + b"\n", mode=0o644)
    return jwk["kid"]


def retire_key(directory: Path, kid: str) -> None:
    """Drop ``kid`` from the JWKS and delete its private key; the current key cannot be retired."""
    if _current_kid(directory) == kid:
        raise KeyConfigError(f"{kid} is the current signing key; generate its successor before retiring it")
    listed = _read_jwks(directory)["keys"]
    kept = [key for key in listed if key.get("kid") != kid]
    if len(kept) == len(listed):
        raise KeyConfigError(f"{directory / JWKS_FILE} does not list {kid}")
    _write(directory / JWKS_FILE, _json({"keys": kept}), mode=0o644)
    (directory / f"{kid}.pem").unlink(missing_ok=True)


def load_signer(settings: Settings) -> Signer:
    """What signs every action and warning: the current key of ``signing_key_dir``, or HMAC if chosen.

    Without a key directory it is the development key, which ``require_real_keys`` refuses.
    """
    if settings.signing_algorithm == "hmac":
        return HmacSigner(settings.signing)
    if settings.signing_key_dir is None:
        return Ed25519Signer.development()
    directory = settings.signing_key_dir
    kid = _current_kid(directory)
    if kid is None:
        raise KeyConfigError(
            f"{directory / CURRENT_FILE} is missing: create the keys with `interceptor keys {directory}`"
        )
    try:
        private_key = load_pem_private_key((directory / f"{kid}.pem").read_bytes(), password=None)
    except (OSError, ValueError) as error:
        raise KeyConfigError(f"cannot read the signing key {directory / f'{kid}.pem'}: {error}") from None
    if not isinstance(private_key, Ed25519PrivateKey):
        raise KeyConfigError(f"{directory / f'{kid}.pem'} is not an Ed25519 private key")
    signer = Ed25519Signer(private_key)
    if signer.kid not in {key.get("kid") for key in _read_jwks(directory)["keys"]}:
        raise KeyConfigError(
            f"{directory / JWKS_FILE} does not list the current key {signer.kid}: nobody could verify it"
        )
    return signer


def uses_development_key(settings: Settings) -> bool:
    if settings.signing_algorithm == "hmac":
        return settings.default_signing_key.get_secret_value() == DEVELOPMENT_HMAC_KEY
    return settings.signing_key_dir is None


def require_real_keys(settings: Settings) -> None:
    """Refuse to sign real orders, or pseudonymise real accounts, with a key anyone can read in this repository."""
    if settings.insecure_dev_keys:
        return
    missing = []
    if uses_development_key(settings):
        missing.append(
            "INTERCEPTOR_DEFAULT_SIGNING_KEY (and INTERCEPTOR_SIGNING_KEYS per addressee)"
            if settings.signing_algorithm == "hmac"
            else "INTERCEPTOR_SIGNING_KEY_DIR to a directory made by `interceptor keys DIR`"
        )
    if settings.pseudonym_key.get_secret_value() == DEVELOPMENT_PSEUDONYM_KEY:
        missing.append("INTERCEPTOR_PSEUDONYM_KEY to a secret of the war room's")
    if missing:
        raise KeyConfigError(
            "refusing to start: no signing key is configured, and the development keys are public. "
            f"Set {' and '.join(missing)}; or, for a demo or a test only, pass --insecure-dev-keys "
            "(INTERCEPTOR_INSECURE_DEV_KEYS=true)"
        )


def load_institution_keys(settings: Settings) -> InstitutionKeys:
    """Institution -> its public keys by kid, from ``institution_keys_file`` (``{"KBANK": <JWKS>, ...}``)."""
    path = settings.institution_keys_file
    if path is None:
        return {}
    try:
        registry: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise KeyConfigError(f"cannot read the institution keys {path}: {error}") from None
    if not isinstance(registry, dict):
        raise KeyConfigError(f"{path}: expected an object mapping each institution to its JWKS")
    try:
        return {name: public_keys_from_jwks(jwks, f"{path}: {name}") for name, jwks in registry.items()}
    except ValueError as error:
        raise KeyConfigError(str(error)) from None


def _current_kid(directory: Path) -> str | None:
    try:
        return (directory / CURRENT_FILE).read_text(encoding="ascii").strip() or None
    except FileNotFoundError:
        return None


def _read_jwks(directory: Path) -> dict[str, list[dict[str, str]]]:
    path = directory / JWKS_FILE
    try:
        jwks = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"keys": []}
    except ValueError as error:
        raise KeyConfigError(f"{path} is not valid JSON: {error}") from None
    try:
        public_keys_from_jwks(jwks, str(path))
    except ValueError as error:
        raise KeyConfigError(str(error)) from None
    return {"keys": list(jwks["keys"])}


def _json(value: object) -> bytes:
    return (json.dumps(value, indent=2) + "\n").encode()


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write atomically: a crash leaves the old file or the new one, never half of either."""
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
    os.replace(temporary, path)
