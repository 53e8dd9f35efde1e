"""An ask's life past the flow: a question left unanswered when its flow lapsed is expired the next time the
member is due one (not left `asked` for the report), and a closed ask scores nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from storage import surveys
from storage.db import Database
from storage.errors import NotFoundError
from storage.models import Member, Survey, SurveyAsk
from tests.support.factories import add_member, make_ledger

NOW = datetime(2026, 11, 22, 2, 0, tzinfo=UTC)


async def _world(db: Database, state: str, asked_at: datetime | None) -> tuple[int, int]:
    member_id = await add_member(db, NOW - timedelta(days=200), openid="oSURVEYasks")
    async with db.unit_of_work() as session:
        survey = Survey(name="购物体验", kind="nps", question="推荐吗？", touchpoint="order", created_at=NOW)
        session.add(survey)
        await session.flush()
        ask = SurveyAsk(survey_id=survey.id or 0, member_id=member_id, trigger_key="order:A-1", touchpoint="order",
                        triggered_at=asked_at or NOW, state=state, asked_at=asked_at)
        session.add(ask)
        await session.flush()
        return member_id, int(ask.id or 0)


async def test_a_question_whose_flow_lapsed_is_expired_when_the_member_is_next_due(db: Database) -> None:
    member_id, ask_id = await _world(db, "asked", NOW - surveys.QUIET - timedelta(days=1))
    async with db.unit_of_work() as session:
        assert await surveys.take(session, member_id, NOW) is None  # nothing pending to ask
    async with db.sessions() as session:
        ask = await session.get(SurveyAsk, ask_id)
    assert ask is not None
    assert ask.state == "expired"


@pytest.mark.parametrize("state", ["declined", "dropped", "expired"])
async def test_a_closed_ask_scores_nothing(db: Database, state: str) -> None:
    member_id, ask_id = await _world(db, state, NOW - timedelta(hours=1))
    async with db.unit_of_work() as session:
        member = await session.get(Member, member_id)
        assert member is not None
        with pytest.raises(NotFoundError):
            await surveys.answer(session, ask_id, member, 9, NOW, ledger=make_ledger(), tickets=None,  # type: ignore[arg-type]
                                 openid="oSURVEYasks", source="oa", ticket_text="")
    async with db.sessions() as session:
        ask = await session.get(SurveyAsk, ask_id)
    assert ask is not None
    assert (ask.state, ask.score, ask.thanked) == (state, None, 0)
