"""The KV contract (storage/kv.py): one suite over fakeredis (memory://), a real Redis and a Redis Cluster of
three masters (redis+cluster://, tests/support/redis_cluster.py)."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator

import pytest
from redis.crc import key_slot
from redis.exceptions import RedisClusterException, RedisError

from storage.kv import CLUSTER_SCHEMES, KV, LockTimeoutError, member_tag
from tests.conftest import SERVER
from tests.support import backends


@pytest.fixture(
    params=[
        "memory",
        pytest.param(
            "redis",
            marks=pytest.mark.skipif(SERVER is None, reason="Redis not reachable (WXBOT_REQUIRE_SERVICES unset)"),
        ),
        "cluster",
    ]
)
async def kv(request: pytest.FixtureRequest) -> AsyncIterator[KV]:
    if request.param == "memory":
        store = KV(f"memory://contract-{secrets.token_hex(6)}")
    elif request.param == "cluster":
        cluster = request.getfixturevalue("cluster")
        cluster.flush()
        store = KV(cluster.url)
    else:
        assert SERVER is not None
        store = KV(backends.redis_db_url(SERVER.redis_url))
    await store.redis.flushdb()
    try:
        yield store
    finally:
        await store.redis.flushdb()
        await store.close()


async def test_get_set_and_missing(kv: KV) -> None:
    assert await kv.get("wxbot:t:missing") is None
    assert await kv.set("wxbot:t:a", "1") is True
    assert await kv.get("wxbot:t:a") == "1"
    assert await kv.set("wxbot:t:a", "两") is True  # overwrite, unicode round trip
    assert await kv.get("wxbot:t:a") == "两"
    assert await kv.set("wxbot:t:n", 42) is True
    assert await kv.get("wxbot:t:n") == "42"


async def test_set_nx(kv: KV) -> None:
    assert await kv.set("wxbot:t:nx", "first", nx=True) is True
    assert await kv.set("wxbot:t:nx", "second", nx=True) is False
    assert await kv.get("wxbot:t:nx") == "first"


async def test_set_nx_is_atomic_under_concurrency(kv: KV) -> None:
    results = await asyncio.gather(*(kv.set("wxbot:t:race", str(i), nx=True) for i in range(20)))
    assert sum(results) == 1
    winner = results.index(True)
    assert await kv.get("wxbot:t:race") == str(winner)


async def test_set_ex_expires(kv: KV) -> None:
    assert await kv.set("wxbot:t:ex", "v", ex=0.2) is True
    assert await kv.get("wxbot:t:ex") == "v"
    ttl = await kv.ttl("wxbot:t:ex")
    assert ttl is not None
    assert 0 < ttl <= 0.2
    await asyncio.sleep(0.3)
    assert await kv.get("wxbot:t:ex") is None
    # once expired, nx may take it again
    assert await kv.set("wxbot:t:ex", "again", ex=0.2, nx=True) is True


async def test_set_nx_with_ex_keeps_the_first_ttl(kv: KV) -> None:
    assert await kv.set("wxbot:t:nxex", "a", ex=0.2, nx=True) is True
    assert await kv.set("wxbot:t:nxex", "b", ex=10, nx=True) is False
    await asyncio.sleep(0.3)
    assert await kv.get("wxbot:t:nxex") is None


async def test_plain_set_clears_a_previous_ttl(kv: KV) -> None:
    await kv.set("wxbot:t:keep", "a", ex=0.2)
    await kv.set("wxbot:t:keep", "b")
    assert await kv.ttl("wxbot:t:keep") is None
    await asyncio.sleep(0.3)
    assert await kv.get("wxbot:t:keep") == "b"


async def test_incr(kv: KV) -> None:
    assert await kv.incr("wxbot:t:c") == 1
    assert await kv.incr("wxbot:t:c") == 2
    assert await kv.incr("wxbot:t:c", 5) == 7
    assert await kv.incr("wxbot:t:c", -3) == 4
    assert await kv.get("wxbot:t:c") == "4"
    assert await kv.ttl("wxbot:t:c") is None


async def test_incr_is_atomic_under_concurrency(kv: KV) -> None:
    values = await asyncio.gather(*(kv.incr("wxbot:t:many", ex=5) for _ in range(50)))
    assert sorted(values) == list(range(1, 51))


async def test_incr_with_ex_starts_the_lifetime_at_the_first_increment(kv: KV) -> None:
    assert await kv.incr("wxbot:t:window", ex=0.3) == 1
    await asyncio.sleep(0.15)
    assert await kv.incr("wxbot:t:window", ex=0.3) == 2  # does not extend the window
    ttl = await kv.ttl("wxbot:t:window")
    assert ttl is not None
    assert ttl <= 0.16
    await asyncio.sleep(0.25)
    assert await kv.get("wxbot:t:window") is None
    assert await kv.incr("wxbot:t:window", ex=0.3) == 1  # a fresh window


async def test_delete(kv: KV) -> None:
    await kv.set("wxbot:t:d1", "1")
    await kv.set("wxbot:t:d2", "2")
    assert await kv.delete("wxbot:t:d1", "wxbot:t:d2", "wxbot:t:none") == 2
    assert await kv.get("wxbot:t:d1") is None
    assert await kv.delete("wxbot:t:d1") == 0
    assert await kv.delete() == 0


async def test_expire_and_ttl(kv: KV) -> None:
    assert await kv.ttl("wxbot:t:none") is None
    assert await kv.expire("wxbot:t:none", 1) is False
    await kv.set("wxbot:t:e", "v")
    assert await kv.ttl("wxbot:t:e") is None  # no expiry
    assert await kv.expire("wxbot:t:e", 0.2) is True
    ttl = await kv.ttl("wxbot:t:e")
    assert ttl is not None
    assert 0 < ttl <= 0.2
    assert await kv.expire("wxbot:t:e", 10) is True  # a sliding TTL moves it out again
    ttl = await kv.ttl("wxbot:t:e")
    assert ttl is not None
    assert ttl > 9
    assert await kv.expire("wxbot:t:e", 0.2) is True
    await asyncio.sleep(0.3)
    assert await kv.get("wxbot:t:e") is None
    assert await kv.ttl("wxbot:t:e") is None


async def test_ping(kv: KV) -> None:
    assert await kv.ping() is True


async def test_eval(kv: KV) -> None:
    await kv.set("wxbot:t:ev", "7")
    assert await kv.eval("return redis.call('get', KEYS[1]) + ARGV[1]", ["wxbot:t:ev"], [3]) == 10


# ------------------------------------------------------------------------------------ locks


async def test_lock_gives_mutual_exclusion(kv: KV) -> None:
    holders: list[int] = []
    max_holders = 0
    entered = 0

    async def worker(n: int) -> None:
        nonlocal max_holders, entered
        async with kv.lock("wxbot:lock:t:mutex", ttl=5, wait=5):
            holders.append(n)
            max_holders = max(max_holders, len(holders))
            entered += 1
            await asyncio.sleep(0.01)
            holders.remove(n)

    await asyncio.gather(*(worker(n) for n in range(10)))
    assert entered == 10
    assert max_holders == 1
    assert await kv.get("wxbot:lock:t:mutex") is None  # released


async def test_lock_across_two_clients(kv: KV) -> None:
    """Two KV objects (two workers) on the same store exclude each other."""
    other = KV(kv.url)
    try:
        async with kv.lock("wxbot:lock:t:two", ttl=5, wait=1):
            with pytest.raises(LockTimeoutError):
                async with other.lock("wxbot:lock:t:two", ttl=5, wait=0.1):
                    pytest.fail("both workers held the lock")
        async with other.lock("wxbot:lock:t:two", ttl=5, wait=0.1):
            pass
    finally:
        await other.close()


async def test_lock_wait_timeout_raises(kv: KV) -> None:
    async with kv.lock("wxbot:lock:t:busy", ttl=5, wait=1):
        started = time.monotonic()
        with pytest.raises(LockTimeoutError):
            async with kv.lock("wxbot:lock:t:busy", ttl=5, wait=0.2):
                pytest.fail("lock taken twice")
        waited = time.monotonic() - started
        assert 0.15 <= waited < 1.0
    # free again once the holder leaves
    async with kv.lock("wxbot:lock:t:busy", ttl=5, wait=0):
        pass


async def test_lock_is_released_when_the_body_raises(kv: KV) -> None:
    with pytest.raises(RuntimeError):
        async with kv.lock("wxbot:lock:t:raise", ttl=5, wait=1):
            raise RuntimeError("boom")
    async with kv.lock("wxbot:lock:t:raise", ttl=5, wait=0):
        pass


async def test_lock_expires_after_ttl_when_the_holder_never_releases(kv: KV) -> None:
    crashed = kv.lock("wxbot:lock:t:dead", ttl=0.2, wait=1)
    await crashed.__aenter__()  # a worker that took the lock and died: nobody exits it
    with pytest.raises(LockTimeoutError):
        async with kv.lock("wxbot:lock:t:dead", ttl=5, wait=0.05):
            pass
    started = time.monotonic()
    async with kv.lock("wxbot:lock:t:dead", ttl=5, wait=2):
        assert time.monotonic() - started < 0.5


async def test_holder_past_its_ttl_does_not_release_the_next_holders_lock(kv: KV) -> None:
    """The slow first holder outlives its TTL; the second takes the lock; when the first finally
    leaves it must not delete the second's lock."""
    second_has_it = asyncio.Event()
    first_left = asyncio.Event()

    async def slow_first() -> None:
        async with kv.lock("wxbot:lock:t:slow", ttl=0.2, wait=1):
            await second_has_it.wait()
        first_left.set()

    async def second() -> None:
        async with kv.lock("wxbot:lock:t:slow", ttl=5, wait=2):
            second_has_it.set()
            await first_left.wait()
            with pytest.raises(LockTimeoutError):
                async with kv.lock("wxbot:lock:t:slow", ttl=5, wait=0.05):
                    pytest.fail("the first holder deleted the second's lock")

    await asyncio.wait_for(asyncio.gather(slow_first(), second()), timeout=5)


# ------------------------------------------------------------------------- memory:// sharing


async def test_two_kv_objects_on_one_memory_url_share_data() -> None:
    url = f"memory://shared-{secrets.token_hex(6)}"
    one, two = KV(url), KV(url)
    elsewhere = KV(f"memory://other-{secrets.token_hex(6)}")
    try:
        await one.set("wxbot:t:shared", "hello")
        assert await two.get("wxbot:t:shared") == "hello"
        assert await two.set("wxbot:t:shared", "x", nx=True) is False
        assert await elsewhere.get("wxbot:t:shared") is None
        async with one.lock("wxbot:lock:t:shared", ttl=5, wait=1):
            with pytest.raises(LockTimeoutError):
                async with two.lock("wxbot:lock:t:shared", ttl=5, wait=0.05):
                    pass
    finally:
        for store in (one, two, elsewhere):
            await store.close()


async def test_a_script_over_one_members_keys_runs_everywhere(kv: KV) -> None:
    """The intake's script takes several keys of one member at once: under one hash tag they are one Redis
    Cluster slot, so the script runs on a cluster as on one Redis."""
    tag = member_tag("oa", "oTAGGED")
    keys = [f"wxbot:t:{tag}:a", f"wxbot:t:{tag}:b", f"wxbot:t:{tag}:c"]
    assert len({key_slot(k.encode()) for k in keys}) == 1
    for key in keys:
        await kv.set(key, "mine")
    assert await kv.renew(dict.fromkeys(keys, "mine"), ttl=5) == 3
    assert await kv.eval("return #KEYS", keys, []) == 3


async def test_keys_of_two_slots_in_one_script_are_refused_only_by_a_cluster(kv: KV) -> None:
    """Why the tags: without them a member's keys spread over slots, and a cluster refuses the script."""
    keys = ["wxbot:t:a", "wxbot:t:b"]
    assert key_slot(keys[0].encode()) != key_slot(keys[1].encode())
    if kv.url.startswith(CLUSTER_SCHEMES):
        with pytest.raises((RedisError, RedisClusterException), match="(?i)slot"):  # the client or the server
            await kv.eval("return #KEYS", keys, [])
    else:
        assert await kv.eval("return #KEYS", keys, []) == 2
