"""G6: vending keys encrypted at rest (``prepaid_core.secrets_box``)."""

import base64
import secrets

import pytest

from prepaid_core import secrets_box
from prepaid_core.secrets_box import SecretBoxError

SECRET = "server secret of the test configuration"
KEY = bytes.fromhex("5a" * 32)
COMPANY_1 = b"res.company:1"


def test_round_trip_gives_back_the_key_and_hides_it():
    text = secrets_box.encrypt(SECRET, KEY, COMPANY_1)
    assert text.startswith("v1:")
    assert secrets_box.is_encrypted(text)
    assert KEY.hex() not in text.lower()
    assert KEY not in base64.b64decode(text[3:])
    assert secrets_box.decrypt(SECRET, text, COMPANY_1) == KEY


def test_each_encryption_draws_a_new_nonce():
    first = secrets_box.encrypt(SECRET, KEY, COMPANY_1)
    second = secrets_box.encrypt(SECRET, KEY, COMPANY_1)
    assert first != second
    assert base64.b64decode(first[3:])[:12] != base64.b64decode(second[3:])[:12]
    assert secrets_box.decrypt(SECRET, second, COMPANY_1) == KEY


def test_wrong_secret_is_refused():
    text = secrets_box.encrypt(SECRET, KEY, COMPANY_1)
    with pytest.raises(SecretBoxError, match="another secret"):
        secrets_box.decrypt("another server secret, same length", text, COMPANY_1)


def test_another_company_is_refused():
    text = secrets_box.encrypt(SECRET, KEY, COMPANY_1)
    with pytest.raises(SecretBoxError, match="another record"):
        secrets_box.decrypt(SECRET, text, b"res.company:2")


# a byte of the nonce, of the ciphertext, of the tag
@pytest.mark.parametrize("position", [3, 20, -2])
def test_tampered_text_is_refused(position):
    text = secrets_box.encrypt(SECRET, KEY, COMPANY_1)
    raw = bytearray(base64.b64decode(text[3:]))
    raw[position] ^= 0x01
    tampered = "v1:" + base64.b64encode(bytes(raw)).decode("ascii")
    with pytest.raises(SecretBoxError, match="altered"):
        secrets_box.decrypt(SECRET, tampered, COMPANY_1)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (KEY.hex(), "starts with 'v1:'"),
        ("v1:not base64!", "not valid base64"),
        ("v1:" + base64.b64encode(b"\0" * 28).decode(), "too short"),
        (None, "starts with 'v1:'"),
    ],
)
def test_malformed_text_is_refused(text, message):
    with pytest.raises(SecretBoxError, match=message):
        secrets_box.decrypt(SECRET, text, COMPANY_1)


@pytest.mark.parametrize("secret", [None, "", "   ", "short secret"])
def test_missing_or_short_secret_is_refused(secret):
    with pytest.raises(SecretBoxError, match="at least 16 characters"):
        secrets_box.encrypt(secret, KEY, COMPANY_1)


def test_error_messages_never_show_the_secret_or_the_key():
    key = secrets.token_bytes(32)
    text = secrets_box.encrypt(SECRET, key, COMPANY_1)
    for secret, associated in ((SECRET, b"res.company:2"), ("x" * 20, COMPANY_1)):
        with pytest.raises(SecretBoxError) as error:
            secrets_box.decrypt(secret, text, associated)
        assert SECRET not in str(error.value)
        assert key.hex() not in str(error.value)


def test_empty_value_is_refused():
    with pytest.raises(SecretBoxError, match="non-empty bytes"):
        secrets_box.encrypt(SECRET, b"", COMPANY_1)
