"""The few Redis operations the service uses, over redis.asyncio; `memory://` is fakeredis in-process,
so one code path serves both.

`redis+cluster://host:port[,host:port...]` is a Redis Cluster (issue 20). Every script and transaction the
service runs keeps its keys in one hash slot: the keys of one member carry the hash tag `member_tag()` gives
(`{oa:<openid>}`), so a message's delivery claim, lock, flow state, window and touch are one slot's.

The real client heals (issue 12): every call has socket and connect timeouts, a connection or timeout
error is retried with exponential backoff on a fresh connection (a pooled connection from before a Redis
restart fails once, then is replaced), and a connection idle past the health-check interval is pinged
before use. Commands are safe to send twice: the service's scripts recognise their own earlier run.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, cast

import fakeredis
from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger("wxbot.kv")

# What callers above storage catch when the KV cannot answer (unreachable, timed out, or refused).
KVError = RedisError

# One fake server per memory:// URL, so several app instances in one process share it
# exactly as several workers share one real Redis.
_FAKE_SERVERS: dict[str, fakeredis.FakeServer] = {}

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
# KEYS: a key to set, a lock; ARGV: the value, its lifetime in ms, the lock's token. SET, then _RELEASE's
# compare-and-delete on the lock, in one round trip (the two keys must share a hash slot on a Cluster).
_SET_AND_RELEASE = """
redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2])
if redis.call('get', KEYS[2]) == ARGV[3] then return redis.call('del', KEYS[2]) end
return 0
"""
# KEYS: the keys; ARGV: the value each must still hold, then the new lifetime in ms. Returns how many renewed.
_RENEW = """
local renewed = 0
for i, key in ipairs(KEYS) do
  if redis.call('get', key) == ARGV[i] then
    redis.call('pexpire', key, ARGV[#ARGV])
    renewed = renewed + 1
  end
end
return renewed
"""


@dataclass(frozen=True)
class KVOptions:
    """How the real client bounds and heals its calls (bot/settings.py: REDIS_*)."""

    socket_timeout: float = 0.5
    connect_timeout: float = 0.5
    retries: int = 3
    health_check_interval: float = 2.0


CLUSTER_SCHEMES = ("redis+cluster://", "rediss+cluster://")


def member_tag(source: str, openid: str) -> str:
    """The hash tag of one member's keys: on a Redis Cluster they all live in one slot, so a script over
    several of them runs on one node (on a single Redis the braces are just characters)."""
    return "{" + f"{source}:{openid}" + "}"


def cluster_nodes(url: str) -> tuple[list[tuple[str, int]], str | None, str | None, bool]:
    """(nodes, username, password, tls) of `redis+cluster://[user:password@]host:port[,host:port...]`."""
    scheme, rest = url.split("://", 1)
    rest = rest.split("/", 1)[0]
    username = password = None
    if "@" in rest:
        credentials, rest = rest.rsplit("@", 1)
        username, _, password = credentials.rpartition(":")
    nodes = []
    for part in rest.split(","):
        host, _, port = part.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"a Redis Cluster URL names host:port nodes, got {part.strip()[:40]!r}")
        nodes.append((host, int(port)))
    return nodes, username or None, password or None, scheme.startswith("rediss")


def _client(url: str, options: KVOptions) -> Redis:
    retry = Retry(ExponentialBackoff(cap=0.2, base=0.01), options.retries)
    common: dict[str, Any] = {
        "decode_responses": True, "socket_timeout": options.socket_timeout,
        "socket_connect_timeout": options.connect_timeout, "retry": retry,
        "retry_on_error": [RedisConnectionError, RedisTimeoutError, OSError],
        "health_check_interval": options.health_check_interval,
    }
    if url.startswith(CLUSTER_SCHEMES):
        nodes, username, password, tls = cluster_nodes(url)
        # The same calls as on one Redis (the commands the service sends exist on both), so typed as one.
        return cast(Redis, RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in nodes], username=username, password=password,
            ssl=tls, **common,
        ))
    return Redis.from_url(url, **common)


def new_token() -> str:
    """A lock's owner token: random, so only its taker can release it after the TTL."""
    return secrets.token_hex(8)


class LockTimeoutError(Exception):
    """The lock stayed taken for longer than the caller was willing to wait."""


class KV:
    def __init__(self, url: str, options: KVOptions | None = None) -> None:
        self.url = url
        self.is_memory = url.startswith("memory://")
        if self.is_memory:
            server = _FAKE_SERVERS.setdefault(url, fakeredis.FakeServer())
            self.redis: Redis = fakeredis.FakeAsyncRedis(server=server, decode_responses=True)
        else:
            self.redis = _client(url, options or KVOptions())
        self._release = self.redis.register_script(_RELEASE)
        self._set_and_release = self.redis.register_script(_SET_AND_RELEASE)
        self._renew = self.redis.register_script(_RENEW)

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
    async def lock(self, name: str, *, ttl: float, wait: float, token: str | None = None) -> AsyncIterator[None]:
        """A lock shared by every process: SET NX PX with a random token (or the caller's, so it can renew
        the lock), retried until `wait` has passed."""
        token = token or new_token()
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
            await self._let_go(name, token, plain=time.monotonic() - taken < ttl / 2)

    async def release(self, name: str, token: str) -> None:
        """Let a lock go if `token` still holds it; a KV that fails leaves it to lapse by its TTL."""
        await self._let_go(name, token, plain=False)

    async def _let_go(self, name: str, token: str, *, plain: bool) -> None:
        # A release that fails (Redis gone) must not turn the work done under the lock into an error:
        # the lock lapses by its TTL.
        try:
            if plain:
                await self.redis.delete(name)
            else:
                await self._release(keys=[name], args=[token])
        except RedisError as exc:
            log.warning("releasing a lock failed (%s); it lapses by its TTL", type(exc).__name__)

    async def set_and_release(self, key: str, value: str, *, ex: float, lock: str, token: str) -> None:
        """SET key value with a lifetime, and let `lock` go if `token` still holds it, in one round trip.
        A failure is raised (the value may not be stored); the lock then lapses by its TTL."""
        await self._set_and_release(keys=[key, lock], args=[value, int(ex * 1000), token])

    async def extend_if(self, key: str, token: str, ttl: float) -> bool:
        """Renew a key's TTL only while it still holds our token (leases, leadership)."""
        return bool(await self.renew({key: token}, ttl))

    async def renew(self, held: dict[str, str], ttl: float) -> int:
        """Renew each key's TTL while it still holds the given value (a delivery's claim, its lock);
        returns how many were renewed."""
        if not held:
            return 0
        return int(await self._renew(keys=list(held), args=[*held.values(), int(ttl * 1000)]))

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
