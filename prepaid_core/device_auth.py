"""G5: the device API's credentials and request signatures, shared by Odoo and the runner.

A gateway has one secret, its gateway key. Odoo stores only values that cannot sign:
:func:`key_hash` (checks ``X-Api-Key`` where unsigned requests are allowed) and
:func:`public_key_hex`, the Ed25519 public key of the signing key derived from the gateway
key. :func:`sign_request` and :func:`verify_request` sign and check the canonical string of
:func:`canonical_request`, within :data:`WINDOW_SECONDS` of the server's clock.

See docs/device_api.md.
"""

from __future__ import annotations

import hashlib
import re
import time

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = [
    "SCHEME",
    "WINDOW_SECONDS",
    "body_digest",
    "canonical_request",
    "is_public_key",
    "key_hash",
    "public_key_hex",
    "sign_request",
    "signing_key",
    "valid_message_id",
    "verify_request",
]

SCHEME = "v2"
#: a signed request older or newer than this (seconds) is refused
WINDOW_SECONDS = 300
SIGNING_INFO = b"prepaid gateway request signing v2"
_SIGNING_SALT = b"prepaid-energy device API"
#: printable ASCII without spaces: a message id cannot break the canonical string's lines
_MESSAGE_ID = re.compile(r"[\x21-\x7e]{1,128}")
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_HEX_PUBLIC_KEY = re.compile(r"[0-9a-f]{64}")
_HEX_SIGNATURE = re.compile(r"[0-9a-f]{128}")


def key_hash(key: str) -> str:
    """Hex SHA-256 of a gateway key: what Odoo keeps to check ``X-Api-Key``."""
    return hashlib.sha256(key.encode()).hexdigest()


def signing_key(key: str) -> Ed25519PrivateKey:
    """The Ed25519 key that signs a gateway's requests, derived from its gateway key."""
    if not key:
        raise ValueError("the gateway key is empty")
    seed = HKDF(algorithm=hashes.SHA256(), length=32, salt=_SIGNING_SALT, info=SIGNING_INFO)
    return Ed25519PrivateKey.from_private_bytes(seed.derive(key.encode()))


def public_key_hex(key: str) -> str:
    """Hex public key of the gateway key's signing key: what Odoo keeps to verify."""
    public = signing_key(key).public_key()
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def is_public_key(text: str) -> bool:
    """Whether ``text`` is a hex Ed25519 public key as :func:`public_key_hex` gives it."""
    if not isinstance(text, str) or not _HEX_PUBLIC_KEY.fullmatch(text):
        return False
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(text))
    except ValueError:
        return False
    return True


def valid_message_id(message_id) -> bool:
    """1 to 128 printable ASCII characters, no space."""
    return isinstance(message_id, str) and bool(_MESSAGE_ID.fullmatch(message_id))


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def canonical_request(method: str, path: str, timestamp: str, message_id: str, body: bytes):
    """The bytes a signature covers (see the module's docstring)."""
    lines = (SCHEME, method.upper(), path, timestamp, message_id, body_digest(body))
    return "\n".join(lines).encode()


def sign_request(
    private: Ed25519PrivateKey,
    method: str,
    path: str,
    message_id: str,
    body: bytes,
    timestamp: str | None = None,
) -> tuple[str, str]:
    """``(timestamp, hex signature)`` of a request, the timestamp now unless given."""
    timestamp = timestamp or str(int(time.time()))
    signature = private.sign(canonical_request(method, path, timestamp, message_id, body))
    return timestamp, signature.hex()


def verify_request(
    public_hex: str,
    signature: str,
    method: str,
    path: str,
    timestamp: str,
    message_id: str,
    body: bytes,
    *,
    now: float | None = None,
    window: int = WINDOW_SECONDS,
) -> bool:
    """Whether ``signature`` (hex) is the gateway's over this request, made within
    ``window`` seconds of ``now``.  Anything malformed is simply not valid."""
    if not (
        is_public_key(public_hex)
        and isinstance(signature, str)
        and _HEX_SIGNATURE.fullmatch(signature)
        and isinstance(timestamp, str)
        and _TIMESTAMP.fullmatch(timestamp)
        and valid_message_id(message_id)
    ):
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > window:
        return False
    public = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex))
    try:
        public.verify(
            bytes.fromhex(signature), canonical_request(method, path, timestamp, message_id, body)
        )
    except InvalidSignature:
        return False
    return True
