"""bot/crypto.py against the worked vectors of wechat-protocol.md §1 and §3.5, byte for byte, and the
ways a safe-mode body must fail."""

from __future__ import annotations

import base64
import json

import pytest

from bot.crypto import CryptoError, Envelope, PiiCipher, aes_key, sha1_signature, signature_matches
from bot.settings import new_pii_key
from tests.support.vectors import (
    A_AES_KEY,
    A_APPID,
    A_ENCRYPT,
    A_MESSAGE,
    A_REPLY_ENCRYPT,
    A_TOKEN,
    C_AES_KEY,
    C_APPID,
    C_ENCRYPT,
    C_MESSAGE,
    C_TOKEN,
)

OTHER_AES_KEY = "ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxwvut"


def fixed(value: bytes):  # type: ignore[no-untyped-def]
    def random(n: int) -> bytes:
        assert n == 16
        return value

    return random


# ---------------------------------------------------------------------------- signatures (§1)


@pytest.mark.parametrize(
    ("timestamp", "nonce", "expected"),
    [
        ("1714036504", "1514711492", "f464b24fc39322e44b38aa78f5edd27bd1441696"),  # GET verify
        ("1714037059", "486452656", "899cf89e464efb63f54ddac96b0a0a235f53aa78"),  # POST plaintext
        ("1714112445", "415670741", "6c5c811b55cc85e0e1b54100749188c20beb3f5d"),  # POST safe mode
    ],
)
def test_official_request_signatures(timestamp: str, nonce: str, expected: str) -> None:
    assert sha1_signature(A_TOKEN, timestamp, nonce) == expected


def test_signature_is_order_independent_and_compares_strictly() -> None:
    expected = sha1_signature(A_TOKEN, "1714036504", "1514711492")
    assert sha1_signature("1514711492", A_TOKEN, "1714036504") == expected
    assert signature_matches(expected, expected)
    assert signature_matches(expected, expected.upper())  # hex case is not meaningful
    assert not signature_matches(expected, None)
    assert not signature_matches(expected, "")
    assert not signature_matches(expected, expected[:-1])
    assert not signature_matches(expected, expected[:-1] + ("0" if expected[-1] != "0" else "1"))


# ------------------------------------------------------------------------- vector A (§3.5)


def test_vector_a_msg_signature() -> None:
    assert (
        sha1_signature(A_TOKEN, "1714112445", "415670741", A_ENCRYPT)
        == "046e02f8204d34f8ba5fa3b1db94908f3df2e9b3"
    )


def test_vector_a_decrypts_to_the_exact_json() -> None:
    opened = Envelope([A_AES_KEY], A_APPID).decrypt(A_ENCRYPT)
    assert opened.message == A_MESSAGE.encode()
    assert opened.key_index == 0
    assert len(opened.message) == 167
    assert json.loads(opened.message)["debug_str"] == "hello world"


def test_vector_a_layout_pad_byte_19() -> None:
    """The ciphertext is 224 bytes; unpadded 205; a 128-bit PKCS#7 unpadder would reject pad 19."""
    assert len(base64.b64decode(A_ENCRYPT)) == 224
    assert aes_key(A_AES_KEY) == bytes(32)


def test_vector_a_reencrypting_the_request_with_its_random_reproduces_it() -> None:
    envelope = Envelope([A_AES_KEY], A_APPID, random=fixed(b"a8eedb185eb2fecf"))
    assert envelope.encrypt(A_MESSAGE.encode()) == A_ENCRYPT


def test_vector_a_encrypted_reply_byte_for_byte() -> None:
    envelope = Envelope([A_AES_KEY], A_APPID, random=fixed(b"707722b803182950"))
    encrypted = envelope.encrypt(b'{"demo_resp":"good luck"}')
    assert encrypted == A_REPLY_ENCRYPT
    assert len(base64.b64decode(encrypted)) == 64
    assert (
        sha1_signature(A_TOKEN, "1713424427", "415670741", encrypted)
        == "1b9339964ed2e271e7c7b6ff2b0ef902fc94dea1"
    )
    assert Envelope([A_AES_KEY], A_APPID).decrypt(encrypted).message == b'{"demo_resp":"good luck"}'


# ------------------------------------------------------------------------- vector C (§3.5)


def test_vector_c_encrypt_and_signatures() -> None:
    envelope = Envelope([C_AES_KEY], C_APPID, random=fixed(b"0123456789abcdef"))
    encrypted = envelope.encrypt(C_MESSAGE.encode())
    assert encrypted == C_ENCRYPT
    assert sha1_signature(C_TOKEN, "1700000000", "987654321") == "36a0924c38f1082a8ba517a1237c541208ae33a7"
    assert (
        sha1_signature(C_TOKEN, "1700000000", "987654321", encrypted)
        == "61619de63f0b9f9d8c34e65a5bd752fe7d75f95a"
    )


def test_vector_c_decrypts_to_the_exact_xml() -> None:
    opened = Envelope([C_AES_KEY], C_APPID).decrypt(C_ENCRYPT)
    assert opened.message.decode() == C_MESSAGE


# Vector B (wechatpy's WeCom-flavoured test) is not reproduced: wechat-protocol.md gives its
# signatures but not its full Encrypt string, and a vector cannot be checked from a summary.


# ------------------------------------------------------------------------------- failures


def test_wrong_appid_is_refused() -> None:
    with pytest.raises(CryptoError):
        Envelope([A_AES_KEY], "wx0000000000000009").decrypt(A_ENCRYPT)
    # a prefix or extension of the real appid is not it either
    with pytest.raises(CryptoError):
        Envelope([A_AES_KEY], A_APPID[:-1]).decrypt(A_ENCRYPT)
    with pytest.raises(CryptoError):
        Envelope([A_AES_KEY], A_APPID + "0").decrypt(A_ENCRYPT)


@pytest.mark.parametrize("position", [0, -1, -17, -33])
def test_tampered_ciphertext_in_the_length_or_trailer_is_refused(position: int) -> None:
    """No MAC in WeChat's scheme: a flipped byte is caught where it lands on the length field,
    the appid or the padding (msg_signature guards the rest, see the webhook tests)."""
    data = bytearray(base64.b64decode(A_ENCRYPT))
    data[position] ^= 0x01
    with pytest.raises(CryptoError):
        Envelope([A_AES_KEY], A_APPID).decrypt(base64.b64encode(bytes(data)).decode())


@pytest.mark.parametrize(
    "encrypted",
    [
        pytest.param(A_ENCRYPT[:-1], id="missing-padding-char"),
        pytest.param(A_ENCRYPT[:-4], id="truncated-by-one-quantum"),
        pytest.param(A_ENCRYPT[:100], id="truncated-mid"),
        pytest.param(A_ENCRYPT[:-2] + "!=", id="not-base64"),
        pytest.param("", id="empty"),
    ],
)
def test_truncated_or_invalid_base64_is_refused(encrypted: str) -> None:
    with pytest.raises(CryptoError):
        Envelope([A_AES_KEY], A_APPID).decrypt(encrypted)


@pytest.mark.parametrize("size", [16, 48, 223, 225, 240])
def test_ciphertext_not_a_multiple_of_32_is_refused(size: int) -> None:
    data = (base64.b64decode(A_ENCRYPT) + bytes(32))[:size]
    assert len(data) == size
    with pytest.raises(CryptoError, match="multiple of 32"):
        Envelope([A_AES_KEY], A_APPID).decrypt(base64.b64encode(data).decode())


def test_key_rotation_decrypts_with_the_previous_key_and_says_which() -> None:
    old = Envelope([C_AES_KEY], C_APPID, random=fixed(b"0123456789abcdef"))
    sealed_with_old = old.encrypt(C_MESSAGE.encode())

    rotated = Envelope([OTHER_AES_KEY, C_AES_KEY], C_APPID)
    opened = rotated.decrypt(sealed_with_old)
    assert opened.message == C_MESSAGE.encode()
    assert opened.key_index == 1

    # the reply goes back under the key that opened the request: the old one
    reply = rotated.encrypt(b"<xml>reply</xml>", opened.key_index)
    assert Envelope([C_AES_KEY], C_APPID).decrypt(reply).message == b"<xml>reply</xml>"
    with pytest.raises(CryptoError):
        Envelope([OTHER_AES_KEY], C_APPID).decrypt(reply)

    # without the previous key the old message does not open
    with pytest.raises(CryptoError):
        Envelope([OTHER_AES_KEY], C_APPID).decrypt(sealed_with_old)

    # a message under the current key opens with index 0
    current = Envelope([OTHER_AES_KEY], C_APPID).encrypt(b"<xml>new</xml>")
    assert rotated.decrypt(current).key_index == 0


def test_empty_previous_key_is_ignored() -> None:
    envelope = Envelope([C_AES_KEY, ""], C_APPID)
    assert len(envelope.keys) == 1
    with pytest.raises(CryptoError):
        Envelope(["", ""], C_APPID)


@pytest.mark.parametrize("key", ["A" * 42, "A" * 44, "A" * 42 + "!", "Zm9v"])
def test_malformed_encoding_aes_key_is_refused(key: str) -> None:
    with pytest.raises(CryptoError):
        aes_key(key)


@pytest.mark.parametrize("length", [0, 1, 15, 16, 17, 31, 32, 33, 200, 2048])
def test_round_trip_every_padding_length(length: int) -> None:
    envelope = Envelope([C_AES_KEY], C_APPID)
    message = ("消" * length).encode()[:length]
    encrypted = envelope.encrypt(message)
    assert len(base64.b64decode(encrypted)) % 32 == 0
    assert envelope.decrypt(encrypted).message == message


def test_random_prefix_makes_each_encryption_different() -> None:
    envelope = Envelope([C_AES_KEY], C_APPID)
    assert envelope.encrypt(b"<xml/>") != envelope.encrypt(b"<xml/>")


# ------------------------------------------------------------------------------ PII cipher

PII_KEY = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="


def test_pii_round_trip_and_ciphertext_hides_the_value() -> None:
    cipher = PiiCipher(PII_KEY)
    token = cipher.encrypt("13800138000")
    assert "13800138000" not in token
    assert cipher.decrypt(token) == "13800138000"
    assert cipher.encrypt("13800138000") != token  # fresh IV each time


def test_pii_lookup_hash_is_stable_and_keyed() -> None:
    one, again = PiiCipher(PII_KEY), PiiCipher(PII_KEY)
    assert one.lookup_hash("13800138000") == again.lookup_hash("13800138000")
    assert len(one.lookup_hash("13800138000")) == 64
    assert one.lookup_hash("13800138000") != one.lookup_hash("13800138001")
    assert "13800138000" not in one.lookup_hash("13800138000")
    other = PiiCipher(new_pii_key())
    assert other.lookup_hash("13800138000") != one.lookup_hash("13800138000")


def test_pii_wrong_key_is_refused() -> None:
    token = PiiCipher(PII_KEY).encrypt("13800138000")
    with pytest.raises(CryptoError):
        PiiCipher(new_pii_key()).decrypt(token)
    with pytest.raises(CryptoError):
        PiiCipher(base64.urlsafe_b64encode(b"short").decode())
