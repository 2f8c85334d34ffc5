"""Rules without servers: password and token hashing, field validation, refresh-token decisions."""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime, timedelta

import pytest
from pydantic import ValidationError

from goodsdrop import fields
from goodsdrop.members import PasswordChange, ProfileUpdate, SignUp
from goodsdrop.passwords import MAXMEM, hash_password, needs_rehash, scrypt_memory, verify_password
from goodsdrop.sessions import REFRESH_RETRY_GRACE_SECONDS, RefreshOutcome, StoredRefreshToken, refresh_outcome
from goodsdrop.tokens import new_opaque_token, token_digest


# ------------------------------------------------------------------------------ hashing
def test_password_hash_is_salted_scrypt_and_verifies():
    first, second = hash_password("correct horse"), hash_password("correct horse")
    assert first != second  # a fresh salt each time
    scheme, n, r, p, salt, digest = first.split("$")
    assert (scheme, int(n), int(r), int(p)) == ("scrypt", 2**17, 8, 1) and salt and digest  # OWASP's scrypt
    assert "correct horse" not in first
    assert verify_password("correct horse", first) and verify_password("correct horse", second)
    assert not verify_password("correct horsE", first) and not verify_password("", first)
    assert not needs_rehash(first)


def _hash_with(password: str, n: int, r: int = 8, p: int = 1) -> str:
    salt = b"0123456789abcdef"
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=32, maxmem=2**30)
    return f"scrypt${n}${r}${p}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def test_an_old_hash_still_verifies_and_asks_to_be_rehashed():
    old = _hash_with("correct horse", 2**14)
    assert verify_password("correct horse", old) and needs_rehash(old)
    assert not verify_password("wrong horse", old)


def test_a_stored_hash_beyond_the_memory_ceiling_fails_instead_of_taking_the_memory():
    assert scrypt_memory(2**18, 8, 1) > MAXMEM
    stored = "scrypt$262144$8$1$" + base64.b64encode(b"0123456789abcdef").decode() + "$" + base64.b64encode(
        b"x" * 32).decode()
    assert verify_password("anything", stored) is False


@pytest.mark.parametrize("stored", ["", "plain-text", "bcrypt$1$2$3$4$5", "scrypt$x$8$1$AAAA$BBBB"[:10]])
def test_malformed_stored_hashes_never_verify(stored):
    assert verify_password("anything", stored) is False


def test_opaque_tokens_are_random_and_stored_as_sha256():
    tokens = {new_opaque_token() for _ in range(100)}
    assert len(tokens) == 100 and all(len(t) == 43 and t.replace("-", "").replace("_", "").isalnum() for t in tokens)
    token = next(iter(tokens))
    assert token_digest(token) == token_digest(token) and len(token_digest(token)) == 64
    assert token_digest(token) != token_digest(token + "x") and token not in token_digest(token)


# ------------------------------------------------------------------------------ fields
def test_email_is_trimmed_and_lower_cased():
    assert fields.normalise_email("  Kim.Min-Su+drops@Example.CO.KR ") == "kim.min-su+drops@example.co.kr"
    for bad in ("kim@", "@example.com", "kim@example", "kim..su@example.com", ".kim@example.com", "kim@exa_mple.com",
                "김@example.com", "kim@例え.jp", "kim'--@example.com", "a" * 65 + "@example.com"):
        with pytest.raises(ValueError):
            fields.normalise_email(bad)


def test_registration_number_check_digit():
    assert fields.check_registration_number("1234567891") == "123-45-67891"
    assert fields.check_registration_number(" 123-45-67891 ") == "123-45-67891"
    for wrong in ("123-45-67890", "123-45-6789", "12-345-67891", "123 45 67891"):
        with pytest.raises(ValueError):
            fields.check_registration_number(wrong)


def test_names_take_any_script_but_no_markup_or_sql():
    for good in ("김민수", "O'Brien", "Jean-Luc Picard", "Dr. Ng", "Zoë Saldaña", "山田 太郎"):
        assert fields.check_person_name(f"  {good} ") == good
    for bad in ("Robert'); DROP TABLE members;--", "<script>", "Kim  Minsu", "Kim\u200bMinsu", "R2D2", "x" * 101):
        with pytest.raises(ValueError):
            fields.check_person_name(bad)


def test_passwords_are_nfkc_normalised_and_bounded():
    assert fields.check_password("ｐａｓｓｗｏｒｄ１２") == "password12"  # noqa: RUF001 - full-width on purpose
    with pytest.raises(ValueError):
        fields.check_password("seven77")
    with pytest.raises(ValueError):
        fields.check_password("x" * 129)
    with pytest.raises(ValueError):
        fields.check_password("tab\tinside-password")


def test_models_forbid_unknown_fields_and_coercion():
    with pytest.raises(ValidationError):
        SignUp.model_validate({"email": "a@b.co", "password": "password-1", "name": "Kim", "role": "seller"})
    with pytest.raises(ValidationError):
        SignUp.model_validate({"email": "a@b.co", "password": 12345678, "name": "Kim"})
    assert ProfileUpdate.model_validate({"phone": None}).model_fields_set == {"phone"}
    with pytest.raises(ValidationError):
        ProfileUpdate.model_validate({})
    with pytest.raises(ValidationError):
        PasswordChange.model_validate({"currentPassword": "same-pass-1", "newPassword": "same-pass-1"})


# ------------------------------------------------------------------------------ refresh decisions
NOW = datetime(2026, 1, 1, 12, 0, 0)


def stored(**changes) -> StoredRefreshToken:
    base = {"session_id": "s1", "member_id": 7, "expires_at": NOW + timedelta(days=14), "used_at": None,
            "session_revoked_at": None}
    return StoredRefreshToken(**(base | changes))


@pytest.mark.parametrize(("token", "outcome"), [
    (None, RefreshOutcome.UNKNOWN),
    (stored(), RefreshOutcome.ROTATE),
    (stored(used_at=NOW - timedelta(minutes=1)), RefreshOutcome.REUSED),
    (stored(used_at=NOW - timedelta(days=20), expires_at=NOW - timedelta(days=6)), RefreshOutcome.REUSED),
    (stored(expires_at=NOW), RefreshOutcome.EXPIRED),
    (stored(session_revoked_at=NOW - timedelta(seconds=1)), RefreshOutcome.REVOKED),
    (stored(session_revoked_at=NOW, used_at=NOW), RefreshOutcome.REVOKED),
    # A retry moments after the rotation, while the successor is unused, gets the same pair again.
    (stored(used_at=NOW - timedelta(seconds=3), successor_unused=True), RefreshOutcome.RETRY),
    (stored(used_at=NOW - timedelta(seconds=REFRESH_RETRY_GRACE_SECONDS), successor_unused=True), RefreshOutcome.RETRY),
    (stored(used_at=NOW - timedelta(seconds=REFRESH_RETRY_GRACE_SECONDS + 1), successor_unused=True),
     RefreshOutcome.REUSED),
    (stored(used_at=NOW - timedelta(seconds=3), successor_unused=False), RefreshOutcome.REUSED),
    # However often it was refreshed, a session ends at its absolute end.
    (stored(session_ends_at=NOW), RefreshOutcome.EXPIRED),
    (stored(session_ends_at=NOW + timedelta(seconds=1)), RefreshOutcome.ROTATE),
])
def test_refresh_outcome(token, outcome):
    assert refresh_outcome(token, NOW) is outcome
