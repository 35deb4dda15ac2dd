"""War-room keys on disk (pipeline/keys.py): made, rotated and retired by `interceptor keys`; refused when public."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.keys import KeyConfigError, generate_key, load_signer, require_real_keys, retire_key
from pipeline.settings import Settings
from schemas.signing import Ed25519Signer, public_keys_from_jwks, verify_ed25519

ROOT = Path(__file__).parents[3]


def signed_by(settings: Settings) -> dict[str, str]:
    signer = load_signer(settings)
    message = {"action_id": "frz-1", "kid": signer.kid_for("KBANK")}
    return {**message, "signature": signer.signature(message, "KBANK")}


def test_a_new_key_is_listed_in_the_jwks_made_current_and_kept_private(tmp_path: Path) -> None:
    kid = generate_key(tmp_path / "keys")

    jwks = json.loads((tmp_path / "keys" / "jwks.json").read_text())
    assert [key["kid"] for key in jwks["keys"]] == [kid]
    assert stat.S_IMODE((tmp_path / "keys" / f"{kid}.pem").stat().st_mode) == 0o600
    assert "PRIVATE" not in (tmp_path / "keys" / "jwks.json").read_text()
    settings = Settings(signing_key_dir=tmp_path / "keys")
    assert verify_ed25519(signed_by(settings), public_keys_from_jwks(jwks, "jwks.json"))


def test_rotation_signs_with_the_new_key_while_the_old_one_still_verifies_until_retired(tmp_path: Path) -> None:
    keys, settings = tmp_path / "keys", Settings(signing_key_dir=tmp_path / "keys")
    old = generate_key(keys)
    issued_before = signed_by(settings)
    new = generate_key(keys)
    issued_after = signed_by(settings)

    def published() -> dict[str, object]:
        return public_keys_from_jwks(json.loads((keys / "jwks.json").read_text()), "jwks.json")  # type: ignore[return-value]

    assert (issued_before["kid"], issued_after["kid"]) == (old, new)
    assert list(published()) == [new, old]
    assert verify_ed25519(issued_before, published()) and verify_ed25519(issued_after, published())
    with pytest.raises(KeyConfigError, match="retire the old one first"):
        generate_key(keys)
    with pytest.raises(KeyConfigError, match="is the current signing key"):
        retire_key(keys, new)

    retire_key(keys, old)
    assert list(published()) == [new] and not (keys / f"{old}.pem").exists()
    assert not verify_ed25519(issued_before, published()) and verify_ed25519(issued_after, published())


def test_the_keys_command_makes_rotates_and_retires(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", str(tmp_path)]) == 0
    first = (tmp_path / "current").read_text().strip()
    assert first in capsys.readouterr().out
    assert main(["keys", str(tmp_path)]) == 0
    assert main(["keys", str(tmp_path)]) == 2, "a third key is refused until one is retired"
    assert "retire the old one first" in capsys.readouterr().err
    assert main(["keys", str(tmp_path), "--retire", first]) == 0
    assert len(json.loads((tmp_path / "jwks.json").read_text())["keys"]) == 1


def test_a_key_directory_that_cannot_sign_says_why(tmp_path: Path) -> None:
    with pytest.raises(KeyConfigError, match="create the keys with `interceptor keys"):
        load_signer(Settings(signing_key_dir=tmp_path))
    kid = generate_key(tmp_path)
    (tmp_path / "jwks.json").write_text('{"keys": []}')
    with pytest.raises(KeyConfigError, match=f"does not list the current key {kid}"):
        load_signer(Settings(signing_key_dir=tmp_path))


PSEUDONYMS = {"pseudonym_key": "a-real-pseudonym-secret"}


@pytest.mark.parametrize(
    ("settings", "refused"),
    [
        (Settings(**PSEUDONYMS), "INTERCEPTOR_SIGNING_KEY_DIR"),
        (Settings(signing_algorithm="hmac", **PSEUDONYMS), "INTERCEPTOR_DEFAULT_SIGNING_KEY"),
        # Addressees without their own key would share the development key.
        (Settings(signing_algorithm="hmac", signing_keys={"KBANK": "k"}, **PSEUDONYMS), "DEFAULT_SIGNING_KEY"),
        (Settings(signing_algorithm="hmac", default_signing_key="a-real-secret"), "INTERCEPTOR_PSEUDONYM_KEY"),
        (Settings(insecure_dev_keys=True), None),
        (Settings(signing_algorithm="hmac", default_signing_key="a-real-secret", **PSEUDONYMS), None),
    ],
)
def test_the_development_keys_are_refused_unless_asked_for(settings: Settings, refused: str | None) -> None:
    if refused is not None:
        with pytest.raises(KeyConfigError, match=f"{refused}.*--insecure-dev-keys"):
            require_real_keys(settings)
    else:
        require_real_keys(settings)


def test_the_tools_sign_with_the_development_key_the_documentation_can_name() -> None:
    signer = load_signer(Settings())
    assert isinstance(signer, Ed25519Signer) and signer.kid == Ed25519Signer.development().kid


def test_starting_a_production_worker_without_keys_fails_with_a_clear_message(tmp_path: Path) -> None:
    env = {name: value for name, value in os.environ.items() if not name.startswith(("INTERCEPTOR_", "KAFKA_"))}
    # The port is closed: a worker that tried to connect before checking its keys would hang, not exit.
    worker = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "worker", "--bootstrap", "127.0.0.1:9", "--data-dir", str(tmp_path)],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip

    assert worker.returncode == 2
    assert "refusing to start: no signing key is configured" in worker.stderr
    assert "INTERCEPTOR_SIGNING_KEY_DIR" in worker.stderr and "--insecure-dev-keys" in worker.stderr
