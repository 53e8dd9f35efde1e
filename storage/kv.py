"""The few Redis operations the service uses, over redis.asyncio; `memory://` is fakeredis in-process,
so one code path serves both.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, cast

import fakeredis
from redis.asyncio import Redis

# One fake server per memory:// URL, so several app instances in one process share it
# exactly as several workers share one real Redis.
_FAKE_SERVERS: dict[str, fakeredis.FakeServer] = {}

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
_EXTEND = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0
"""


def new_token() -> str:
    """A lock's owner token: random, so only its taker can release it after the TTL."""
    return secrets.token_hex(8)


class LockTimeoutError(Exception):
    """The lock stayed taken for longer than the caller was willing to wait."""


class KV:
    def __init__(self, url: str) -> None:
        self.url = url
        self.is_memory = url.startswith("memory://")
        if self.is_memory:
            server = _FAKE_SERVERS.setdefault(url, fakeredis.FakeServer())
            self.redis: Redis = fakeredis.FakeAsyncRedis(server=server, decode_responses=True)
        else:
            self.redis = Redis.from_url(url, decode_responses=True)
        self._release = self.redis.register_script(_RELEASE)
        self._extend = self.redis.register_script(_EXTEND)

    async def get(self, key: str) -> str | None:
        # decode_responses=True: redis-py types replies as bytes | str, these are str
        return cast(str | None, await self.redis.get(key))

    async def set(
        self, key: str, value: str | int, *, ex: float | None = None, nx: bool = False
    ) -> bool:
        """Returns False when nx=True and the key already existed."""
        px = int(ex * 1000) if ex is not None else None
        return bool(await self.redis.set(key, value, px=px, nx=nx))

    async def incr(self, key: str, amount: int = 1, *, ex: float | None = None) -> int:
        """Increment; with ex, the key's lifetime starts at the first increment."""
        if ex is None:
            return int(await self.redis.incrby(key, amount))
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incrby(key, amount)
            pipe.pexpire(key, int(ex * 1000), nx=True)
            value, _ = await pipe.execute()
        return int(value)

    async def delete(self, *keys: str) -> int:
        return int(await self.redis.delete(*keys)) if keys else 0

    async def expire(self, key: str, seconds: float) -> bool:
        return bool(await self.redis.pexpire(key, int(seconds * 1000)))

    async def ttl(self, key: str) -> float | None:
        ms = await self.redis.pttl(key)
        return None if ms < 0 else ms / 1000

    async def ping(self) -> bool:
        return bool(await self.redis.ping())

    @asynccontextmanager
    async def lock(self, name: str, *, ttl: float, wait: float) -> AsyncIterator[None]:
        """A lock shared by every process: SET NX PX with a random token, retried until `wait` has passed."""
        token = new_token()
        deadline = time.monotonic() + wait
        delay = 0.005
        while not await self.redis.set(name, token, px=int(ttl * 1000), nx=True):
            if time.monotonic() >= deadline:
                raise LockTimeoutError(name)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.1)
        async with self.held(name, token, ttl):
            yield

    @asynccontextmanager
    async def held(self, name: str, token: str, ttl: float) -> AsyncIterator[None]:
        """Release a lock taken with `token` (by `lock`, or by a script) when the block ends: with a plain
        DEL while well inside the TTL (nobody else can hold it then), with compare-and-delete after that."""
        taken = time.monotonic()
        try:
            yield
        finally:
            if time.monotonic() - taken < ttl / 2:
                await self.redis.delete(name)
            else:
                await self._release(keys=[name], args=[token])

    async def extend_if(self, key: str, token: str, ttl: float) -> bool:
        """Renew a key's TTL only while it still holds our token (leases, leadership)."""
        return bool(await self._extend(keys=[key], args=[token, int(ttl * 1000)]))

    async def delete_if(self, key: str, token: str) -> bool:
        """Delete a key only while it still holds our token."""
        return bool(await self._release(keys=[key], args=[token]))

    async def eval(self, script: str, keys: list[str], args: list[Any]) -> Any:
        return await self.redis.eval(script, len(keys), *keys, *args)

    def script(self, source: str) -> Callable[[list[str], list[Any]], Awaitable[Any]]:
        """A Lua script registered once and run by its hash (EVALSHA, loaded again if Redis forgot it)."""
        registered = self.redis.register_script(source)

        async def run(keys: list[str], args: list[Any]) -> Any:
            return await registered(keys=keys, args=args)

        return run

    async def close(self) -> None:
        await self.redis.aclose()
