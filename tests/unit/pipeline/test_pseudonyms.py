"""Pseudonyms hide an account number from a partner, stay stable, and only the key holder can match them."""

from __future__ import annotations

import re

import pytest

from pipeline.pseudonyms import Pseudonyms
from pipeline.settings import Settings

WAR_ROOM = Pseudonyms(b"war-room-key")
VICTIM = ("bank", "SCB", "111-2-33333")


def test_a_pseudonym_is_a_prefixed_truncated_keyed_hash_that_hides_the_number() -> None:
    pseudonym = WAR_ROOM.of(VICTIM)
    assert re.fullmatch(r"pseud:[0-9a-f]{32}", pseudonym)
    assert "111" not in pseudonym and "SCB" not in pseudonym


def test_one_account_always_gets_one_pseudonym_and_any_other_account_another() -> None:
    assert WAR_ROOM.of(VICTIM) == WAR_ROOM.of(("bank", "SCB", "111-2-33333"))
    others = [("bank", "KBANK", "111-2-33333"), ("ewallet", "SCB", "111-2-33333"), ("bank", "SCB", "111-2-33334")]
    assert len({WAR_ROOM.of(account) for account in [VICTIM, *others]}) == 4


def test_without_the_key_a_guessed_number_cannot_be_checked() -> None:
    # A partner holding another key (or none) computes something else for the very same account.
    assert Pseudonyms(b"a-partners-guess").of(VICTIM) != WAR_ROOM.of(VICTIM)


def test_the_war_room_reveals_a_pseudonym_from_the_clear_accounts_it_holds() -> None:
    clear = [("bank", "KBANK", "9"), VICTIM, ("crypto", "BINANCE", "0xabc")]
    assert WAR_ROOM.reveal(WAR_ROOM.of(VICTIM), clear) == VICTIM
    assert WAR_ROOM.reveal(WAR_ROOM.of(("bank", "BBL", "1")), clear) is None
    assert Pseudonyms(b"other").reveal(WAR_ROOM.of(VICTIM), clear) is None


def test_a_keyed_digest_follows_the_digest_and_the_key() -> None:
    digest = "sha256:" + "ab" * 32
    keyed = WAR_ROOM.keyed_digest(digest)
    assert re.fullmatch(r"hmac-sha256:[0-9a-f]{64}", keyed)
    assert keyed == WAR_ROOM.keyed_digest(digest)
    assert keyed != WAR_ROOM.keyed_digest("sha256:" + "cd" * 32)
    assert keyed != Pseudonyms(b"other").keyed_digest(digest)


def test_the_key_comes_from_settings_and_is_never_empty_or_printed() -> None:
    settings = Settings(pseudonym_key="s3cret-war-room-key")
    assert settings.pseudonyms == Pseudonyms(b"s3cret-war-room-key")
    assert "s3cret" not in repr(settings.pseudonyms) and "s3cret" not in repr(settings)
    with pytest.raises(ValueError, match="must not be empty"):
        Pseudonyms(b"")
