"""WeChat signatures (constant-time), the AES envelope of safe mode (XML and JSON), and the PII cipher.

Written on `cryptography` directly rather than wechatpy's PrpCrypto: the 16-byte random
must be injectable to reproduce the official vectors, and the Mini Program uses a JSON envelope."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK = 32  # WeChat pads PKCS#7 to 32 bytes, not the AES block size


class CryptoError(ValueError):
    """Ciphertext that does not decrypt, has bad padding, or belongs to another app."""


def sha1_signature(*parts: str) -> str:
    """sha1 of the sorted, concatenated parts (byte order), lowercase hex."""
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def signature_matches(expected: str, given: str | None) -> bool:
    if not given:
        return False
    return hmac.compare_digest(expected, given.lower())


def aes_key(encoding_aes_key: str) -> bytes:
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except binascii.Error as exc:
        raise CryptoError("EncodingAESKey is not base64") from exc
    if len(key) != 32:
        raise CryptoError("EncodingAESKey must decode to 32 bytes")
    return key


@dataclass(frozen=True)
class Decrypted:
    message: bytes
    key_index: int


class Envelope:
    """Safe-mode AES-256-CBC with IV = key[:16]. Keys: current first, then the previous one."""

    def __init__(
        self,
        encoding_aes_keys: Sequence[str],
        appid: str,
        random: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self.keys = [aes_key(k) for k in encoding_aes_keys if k]
        if not self.keys:
            raise CryptoError("no EncodingAESKey configured")
        self.appid = appid.encode()
        self.random = random

    def decrypt(self, encrypted: str) -> Decrypted:
        try:
            data = base64.b64decode(encrypted, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise CryptoError("Encrypt is not base64") from exc
        if not data or len(data) % BLOCK:
            raise CryptoError("ciphertext length is not a multiple of 32")
        for index, key in enumerate(self.keys):
            message = self._open(key, data)
            if message is not None:
                return Decrypted(message, index)
        raise CryptoError("message does not decrypt for this app")

    def _open(self, key: bytes, data: bytes) -> bytes | None:
        decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
        plain = decryptor.update(data) + decryptor.finalize()
        pad = plain[-1]
        if not 1 <= pad <= BLOCK or plain[-pad:] != bytes([pad]) * pad:
            return None
        body = plain[16:-pad]
        if len(body) < 4:
            return None
        (length,) = struct.unpack(">I", body[:4])
        message, appid = body[4 : 4 + length], body[4 + length :]
        if len(message) != length or not hmac.compare_digest(appid, self.appid):
            return None
        return message

    def encrypt(self, message: bytes, key_index: int = 0) -> str:
        key = self.keys[key_index]
        full = self.random(16) + struct.pack(">I", len(message)) + message + self.appid
        pad = BLOCK - len(full) % BLOCK
        full += bytes([pad]) * pad
        encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
        return base64.b64encode(encryptor.update(full) + encryptor.finalize()).decode()


class PiiCipher:
    """Encrypts phone numbers at rest (Fernet under PII_KEY) and gives a keyed hash to look them up."""

    def __init__(self, pii_key: str) -> None:
        raw = base64.urlsafe_b64decode(pii_key.encode())
        if len(raw) != 32:
            raise CryptoError("PII_KEY must be 32 bytes in URL-safe base64 (`wxbot keygen`)")
        self._fernet = Fernet(base64.urlsafe_b64encode(raw))
        self._hash_key = hashlib.sha256(b"wxbot-pii-lookup" + raw).digest()

    def encrypt(self, value: str) -> str:
        return self._fernet.encrypt(value.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise CryptoError("PII value does not decrypt with this PII_KEY") from exc

    def lookup_hash(self, value: str) -> str:
        return hmac.new(self._hash_key, value.encode(), hashlib.sha256).hexdigest()
