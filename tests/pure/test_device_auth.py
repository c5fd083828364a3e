"""G5: device API request signatures (``prepaid_core.device_auth``)."""

import hashlib
import hmac
import time

import pytest

from prepaid_core import device_auth

KEY = "gateway-key-0123456789abcdef"
PATH = "/meter_gateway/api/v1/push"
BODY = b'{"readings":[{"address":"000000000001","forward_total":"1.5"}]}'


def _sign(key=KEY, method="POST", path=PATH, message_id="m-1", body=BODY, timestamp=None):
    return device_auth.sign_request(
        device_auth.signing_key(key), method, path, message_id, body, timestamp
    )


def _verify(timestamp, signature, method="POST", path=PATH, message_id="m-1", body=BODY, **kw):
    public = kw.pop("public", device_auth.public_key_hex(KEY))
    return device_auth.verify_request(
        public, signature, method, path, timestamp, message_id, body, **kw
    )


def test_signature_covers_method_path_timestamp_message_id_and_body():
    timestamp, signature = _sign()
    assert _verify(timestamp, signature)
    assert not _verify(timestamp, signature, body=BODY.replace(b"1.5", b"9.5"))
    assert not _verify(timestamp, signature, path="/meter_gateway/api/v1/commands/ack")
    assert not _verify(timestamp, signature, method="PUT")
    assert not _verify(timestamp, signature, message_id="m-2")
    assert not _verify(str(int(timestamp) + 1), signature)
    # another gateway's key
    assert not _verify(*_sign(key="another gateway's key"))


def test_what_the_database_keeps_cannot_sign():
    """Odoo keeps the key's SHA-256 and the signing public key: signing with either (as
    the key, or as an HMAC key as the first scheme did) is refused."""
    stored = (device_auth.key_hash(KEY), device_auth.public_key_hex(KEY))
    assert KEY not in stored and stored[0] != stored[1]
    for value in stored:
        assert not _verify(*_sign(key=value))
        timestamp = str(int(time.time()))
        canonical = device_auth.canonical_request("POST", PATH, timestamp, "m-1", BODY)
        mac = hmac.new(value.encode(), canonical, hashlib.sha256)
        assert not _verify(timestamp, mac.hexdigest())
        assert not _verify(timestamp, mac.hexdigest() * 2)


def test_timestamp_window():
    now = time.time()
    for offset, valid in ((-301, False), (-299, True), (299, True), (301, False)):
        timestamp, signature = _sign(timestamp=str(int(now + offset)))
        assert _verify(timestamp, signature, now=now) is valid, offset


@pytest.mark.parametrize(
    "change",
    [
        {"timestamp": ""},
        {"timestamp": "-5"},
        {"timestamp": "1e9"},
        {"timestamp": None},
        {"signature": ""},
        {"signature": "zz" * 64},
        {"signature": None},
        {"public": ""},
        {"public": "00" * 31},
        {"public": None},
        {"message_id": ""},
        {"message_id": "m 1"},
        {"message_id": "m\n1"},
        {"message_id": "x" * 129},
        {"message_id": "m-\u0661"},
    ],
)
def test_malformed_input_is_not_valid_and_raises_nothing(change):
    timestamp, signature = _sign()
    args = {"timestamp": timestamp, "signature": signature, **change}
    assert not _verify(args.pop("timestamp"), args.pop("signature"), **args)


def test_derivation_is_stable_and_checked():
    assert device_auth.public_key_hex(KEY) == device_auth.public_key_hex(KEY)
    assert device_auth.is_public_key(device_auth.public_key_hex(KEY))
    assert not device_auth.is_public_key(device_auth.key_hash(KEY).upper())
    assert device_auth.key_hash(KEY) == hashlib.sha256(KEY.encode()).hexdigest()
    with pytest.raises(ValueError):
        device_auth.signing_key("")
    assert device_auth.canonical_request("post", PATH, "1", "m", b"").split(b"\n") == [
        b"v2",
        b"POST",
        PATH.encode(),
        b"1",
        b"m",
        hashlib.sha256(b"").hexdigest().encode(),
    ]
