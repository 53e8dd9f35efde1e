"""The dynamic member code (会员码): a one-time code valid 60 seconds that finds a member at the till
without their phone. The code is `<member id><6 digits>`; the digits are an HMAC of the moment it was
issued (and a nonce) under the member's own secret, derived from PII_KEY and the member id (the keyed lookup hash),
so no secret is stored. The KV remembers when each member's live code was issued (a new one replaces
it); a lookup consumes it, so a code works once, at one store."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

from storage.kv import KV
from storage.members import PiiProtector

VALID_SECONDS = 60
DIGITS = 6
_KEY = "wxbot:mcode:{member_id}"
_KV_LIFETIME = 300.0  # the KV forgets a while after the clock's 60 s have passed


def _secret(pii: PiiProtector, member_id: int) -> bytes:
    return pii.lookup_hash(f"member-code:{member_id}").encode()


def _digits(pii: PiiProtector, member_id: int, issued: str) -> str:
    mac = hmac.new(_secret(pii, member_id), f"{member_id}:{issued}".encode(), hashlib.sha256).digest()
    return f"{int.from_bytes(mac[:8], 'big') % 10 ** DIGITS:0{DIGITS}d}"


async def issue(kv: KV, pii: PiiProtector, member_id: int, now: datetime) -> str:
    """A fresh code for the member; any earlier one stops working."""
    issued = f"{int(now.timestamp())}:{secrets.token_hex(4)}"  # the nonce: two codes in a second differ
    await kv.set(_KEY.format(member_id=member_id), issued, ex=_KV_LIFETIME)
    return f"{member_id}{_digits(pii, member_id, issued)}"


async def consume(kv: KV, pii: PiiProtector, code: str, now: datetime) -> int | None:
    """The member a live code names, once; None for a forged, stale, replaced or already used code."""
    code = code.strip()
    if not code.isascii() or not code.isdigit() or len(code) <= DIGITS or len(code) > DIGITS + 12:
        return None
    member_id, digits = int(code[:-DIGITS]), code[-DIGITS:]
    key = _KEY.format(member_id=member_id)
    issued = await kv.get(key)
    seconds = (issued or "").partition(":")[0]
    if issued is None or not seconds.isdigit():
        return None
    if not 0 <= now.timestamp() - int(seconds) <= VALID_SECONDS:
        return None
    if not hmac.compare_digest(digits, _digits(pii, member_id, issued)):
        return None
    if not await kv.delete(key):  # someone else consumed it a moment ago
        return None
    return member_id
