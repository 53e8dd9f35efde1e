"""Regression in handlers/core/dates.parse_end: a month-day without a year that has already passed
this year means next year, but the year was swapped with `datetime.replace`, so

1. `2月29日 20:00` typed after 29 February of a leap year raised ValueError (day out of range for the
   next, common year) instead of being refused: the manager got the apology, not the re-prompt;
2. `2月29日` typed in December before a leap year was refused, although next year's 29 February is
   within the 90 days, because this (common) year has no 29 February.

Now each candidate year is tried in turn: this year, then next year."""

from __future__ import annotations

from datetime import datetime

from handlers import texts
from handlers.core.dates import parse_end
from tests.support.campaign_support import MANAGER, make_staff
from tests.support.factories import TZ
from tests.support.fakes import WeChat


def test_leap_day_after_it_passed_is_refused_not_an_error() -> None:
    now = datetime(2028, 3, 10, 10, 0, tzinfo=TZ)
    assert parse_end("2月29日 20:00", now, TZ) is None
    assert parse_end("2月29日", now, TZ) is None  # 1 March 2029 00:00 is over 90 days away


def test_leap_day_next_year_is_read_in_december() -> None:
    now = datetime(2027, 12, 20, 10, 0, tzinfo=TZ)
    assert parse_end("2月29日", now, TZ) == datetime(2028, 3, 1, 0, 0, tzinfo=TZ)
    assert parse_end("2月29日 20:00", now, TZ) == datetime(2028, 2, 29, 20, 0, tzinfo=TZ)
    assert parse_end("2027-02-29", now, TZ) is None  # an explicit year is taken as written


async def test_the_flow_reprompts_on_a_passed_leap_day(wechat: WeChat) -> None:
    wechat.services.clock.set(datetime(2028, 3, 10, 10, 0, tzinfo=TZ))
    await make_staff(wechat)
    for answer in ("发起活动", "1", "闰日活动", "10", "5"):
        await wechat.say(MANAGER, answer)
    assert await wechat.say(MANAGER, "2月29日 20:00") == texts.CAMPAIGN_BAD_END
    assert await wechat.say(MANAGER, "3天") == texts.CAMPAIGN_ASK_ROBOT
