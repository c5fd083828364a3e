"""Secrets kept encrypted at rest with a key that is not in the database (G6).

A company's vending key is stored as ``v1:<base64(nonce + ciphertext)>``: AES-256-GCM under
a key derived with HKDF-SHA256 from a secret of the server's configuration, a random 96-bit
nonce per encryption, and associated data naming the record (e.g. the company id), so a
database dump alone reveals nothing and a text copied onto another record does not open.
Every error is a ``SecretBoxError``; no message ever contains a secret or a key.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from prepaid_core.errors import PrepaidError

__all__ = [
    "MIN_SECRET_LENGTH",
    "PREFIX",
    "SecretBoxError",
    "decrypt",
    "encrypt",
    "is_encrypted",
]

PREFIX = "v1:"
MIN_SECRET_LENGTH = 16
_INFO = b"prepaid-energy secrets box v1"
_NONCE_LENGTH = 12
_TAG_LENGTH = 16


class SecretBoxError(PrepaidError):
    """A secret cannot be encrypted or decrypted: the message says why (never the secret)."""


def _cipher(secret: str) -> AESGCM:
    """AES-256-GCM keyed with HKDF-SHA256(secret, info=fixed label)."""
    if not isinstance(secret, str) or len(secret.strip()) < MIN_SECRET_LENGTH:
        raise SecretBoxError(
            f"the configured secret must be a text of at least {MIN_SECRET_LENGTH} characters"
        )
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO)
    return AESGCM(hkdf.derive(secret.strip().encode("utf-8")))


def is_encrypted(text) -> bool:
    """True when ``text`` has the form this module writes (not whether it opens)."""
    return isinstance(text, str) and text.startswith(PREFIX)


def encrypt(secret: str, plaintext: bytes, associated_data: bytes) -> str:
    """Return ``v1:<base64(nonce + ciphertext)>`` of ``plaintext`` bound to ``associated_data``."""
    if not isinstance(plaintext, bytes) or not plaintext:
        raise SecretBoxError("the value to encrypt must be non-empty bytes")
    nonce = os.urandom(_NONCE_LENGTH)
    sealed = _cipher(secret).encrypt(nonce, plaintext, associated_data)
    return PREFIX + base64.b64encode(nonce + sealed).decode("ascii")


def decrypt(secret: str, text: str, associated_data: bytes) -> bytes:
    """Return the plaintext of ``text`` written by ``encrypt`` with the same secret and
    associated data; ``SecretBoxError`` when the form is wrong, the secret is not the one
    it was written with, the record is another one, or the text was altered."""
    if not is_encrypted(text):
        raise SecretBoxError(f"an encrypted value starts with {PREFIX!r}")
    try:
        raw = base64.b64decode(text[len(PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise SecretBoxError("the encrypted value is not valid base64") from None
    if len(raw) <= _NONCE_LENGTH + _TAG_LENGTH:
        raise SecretBoxError("the encrypted value is too short")
    cipher = _cipher(secret)
    try:
        return cipher.decrypt(raw[:_NONCE_LENGTH], raw[_NONCE_LENGTH:], associated_data)
    except InvalidTag:
        raise SecretBoxError(
            "the encrypted value does not open: another secret, another record or altered text"
        ) from None
