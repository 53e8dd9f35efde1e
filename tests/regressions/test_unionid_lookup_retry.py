"""Regression: user/info is asked only on an Official Account follower's first contact, so one busy
answer (-1) left the follower unlinked from their Mini Program membership for good: later messages
never asked again. A transient failure (-1, or no answer) is now retried twice, a little later, off
the reply path; other errors are not retried."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.wechat.identity import IdentityLinker
from storage.clock import FrozenClock
from tests.support.mp_support import MiniProgram, mini_program

OA_USER = "oOAfollower000000000000001"
MP_USER = "oMPuser000000000000000000001"
UNION = "uUNION00000000000000000001"
USER_INFO = "/cgi-bin/user/info"


@pytest.fixture
async def mp(urls: tuple[str, str], clock: FrozenClock) -> AsyncIterator[MiniProgram]:
    async with mini_program(urls, clock) as world:
        linker = world.pipeline.on_first_contact.__self__
        assert isinstance(linker, IdentityLinker)
        linker.retry_after = (0.01, 0.02)
        yield world


async def first_contact_with(mp: MiniProgram, errcodes: list[int]) -> list[int]:
    """The follower writes once while user/info answers `errcodes` first; the errcodes of its calls."""
    token = await mp.login(MP_USER, UNION)
    await mp.signup(token, "13700001111")
    await mp.add_follower(OA_USER, UNION)
    script = await mp.fake.post("/_fake/script", json={"path": USER_INFO, "errcodes": errcodes})
    script.raise_for_status()
    await mp.oa.say(OA_USER, "你好")
    await mp.pipeline.drain()
    return [call["errcode"] for call in await mp.calls(USER_INFO)]


async def test_a_busy_user_info_is_retried_and_the_follower_linked(mp: MiniProgram) -> None:
    assert await first_contact_with(mp, [-1]) == [-1, 0]
    follower = await mp.member(openid=OA_USER)
    assert follower is not None
    assert (follower.mp_openid, follower.unionid) == (MP_USER, UNION)
    assert "您的积分：100" in await mp.oa.say(OA_USER, "积分")


async def test_retries_are_bounded(mp: MiniProgram) -> None:
    assert await first_contact_with(mp, [-1, -1, -1, -1]) == [-1, -1, -1]
    follower = await mp.member(openid=OA_USER)
    assert follower is not None
    assert follower.mp_openid is None


async def test_a_refusal_is_not_retried(mp: MiniProgram) -> None:
    assert await first_contact_with(mp, [40003]) == [40003]
    follower = await mp.member(openid=OA_USER)
    assert follower is not None
    assert follower.unionid is None
