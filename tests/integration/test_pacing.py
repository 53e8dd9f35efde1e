"""Pacing (issue 6): every sender together keeps to WECHAT_PUSH_QPS, through one shared timeline in the KV.

This is a rate check over many events, not a timing assertion on one operation: ~60 sends by several
senders at once, the rate fitted to the times at which the fake WeChat API recorded them (on the real
clock: the fake is given no clock here) and compared with the configured 20 per second within 10%.
No single gap between two sends is judged.

The upper bound (pacing holds the senders back) is checked on every paced run. The lower bound (pacing
does not hold them back further) needs senders that could go faster than 20/s unpaced: the same senders
are timed with pacing off, and on a machine too loaded for that the lower bound is skipped, saying so.
All five senders share this test's one event loop, so a load spike from a parallel test slows a paced
run as a whole: a paced run under 18/s is run again, up to PACED_RUNS times, and the senders are timed
unpaced once more beside it. Pacing that held senders back would slow every run, not one."""

from __future__ import annotations

import asyncio

import pytest

from storage import outbox
from tests.support.factories import local
from tests.support.push_support import TEMPLATES, PushWorld, bulk_members, openid_for, push_world

pytestmark = pytest.mark.kv_cluster  # also on a Redis Cluster (issue 20)

QPS = 20.0
SENDS = 61  # 60 intervals: three seconds at 20/s
SENDERS = 5
PACED_RUNS = 3


async def send_all(world: PushWorld, prefix: str, n: int, qps: float) -> float:
    """Queue n transactional pushes, let SENDERS senders deliver them; the observed rate."""
    now = world.clock.now()
    ids = await bulk_members(world.db, [{
        "openid": openid_for(f"{prefix}{i}"), "joined_at": now, "last_interaction_at": now,
    } for i in range(n)])
    for i, member_id in enumerate(ids):
        await world.queue(f"{prefix}:{i}", member_id=member_id, openid=openid_for(f"{prefix}{i}"), kind="notice",
                          category=outbox.TRANSACTIONAL)
    senders = [world.new_sender(kv=world.new_kv(), batch=3, qps=qps) for _ in range(SENDERS)]
    await world.reset_fake()
    await world.api.access_token(world.api.apps["oa"])  # fetching the token is not a send
    await asyncio.wait_for(asyncio.gather(*(world.drain(s) for s in senders)), timeout=60)
    calls = await world.delivered()
    assert len(calls) == n
    return rate_of(sorted(float(c["time"]) for c in calls))


def rate_of(times: list[float]) -> float:
    """Sends per second: the least-squares slope of the send times against their order, so one late
    call at either end (a busy event loop) does not skew the rate as first-to-last would."""
    n = len(times)
    mean_i, mean_t = (n - 1) / 2, sum(times) / n
    slope = sum((i - mean_i) * (t - mean_t) for i, t in enumerate(times)) / sum((i - mean_i) ** 2 for i in range(n))
    return 1 / slope


async def test_several_senders_together_keep_to_the_configured_rate(urls: tuple[str, str]) -> None:
    async with push_world(
        urls, at=local(2026, 5, 20, 10, 0), fake_clock=False, wechat_template_ids=TEMPLATES, wechat_push_qps=QPS,
    ) as world:
        assert world.sender.config.qps == QPS  # WECHAT_PUSH_QPS reaches the sender
        unpaced = await send_all(world, "free", SENDS, 0)
        rates: list[float] = []
        for run in range(PACED_RUNS):
            rate = await send_all(world, f"paced{run}-", SENDS, QPS)
            assert rate <= QPS * 1.1, f"observed {rate:.2f}/s over {SENDS} sends; {QPS}/s configured"
            rates.append(rate)
            if rate >= QPS * 0.9:
                break
            unpaced = min(unpaced, await send_all(world, f"free{run}-", SENDS, 0))
        assert {r.status for r in await world.rows()} == {"sent"}
    best = max(rates)
    # Only senders with room to spare can show that pacing does not hold them back: at 25/s unpaced (a loaded
    # machine, say a parallel test run beside it) 20/s paced is beyond them, pacing or not.
    if unpaced < QPS * 2:
        pytest.skip(f"senders manage only {unpaced:.1f}/s unpaced on this machine: too slow to check that "
                    f"pacing at {QPS}/s does not hold them back (paced: {best:.1f}/s)")
    assert best >= QPS * 0.9, f"observed {', '.join(f'{r:.2f}' for r in rates)}/s over {SENDS} sends each " \
                              f"({unpaced:.1f}/s unpaced at the slowest)"
