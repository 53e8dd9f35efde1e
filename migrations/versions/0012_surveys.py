"""satisfaction surveys: survey, survey_ask, member.survey_due_until, ticket kind 'survey'

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02

Issue 18 items 5 and 6. The ticket kind CHECK gains 'survey' (a detractor's follow-up ticket); batch mode
recreates the table on SQLite, ALTER on PostgreSQL.
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('survey',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('question', sa.String(length=200), nullable=False),
    sa.Column('followup', sa.String(length=200), nullable=True),
    sa.Column('touchpoint', sa.String(length=16), nullable=False),
    sa.Column('sample_percent', sa.Integer(), nullable=False),
    sa.Column('thanks_points', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.CheckConstraint("kind IN ('nps', 'csat')", name='ck_survey_kind'),
    sa.CheckConstraint("touchpoint IN ('coupon', 'order', 'campaign', 'ticket', 'sample')",
                       name='ck_survey_touchpoint'),
    sa.CheckConstraint("status IN ('active', 'paused')", name='ck_survey_status'),
    sa.CheckConstraint('thanks_points >= 0', name='ck_survey_thanks'),
    sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_survey_touchpoint_status', 'survey', ['touchpoint', 'status'])
    op.create_table('survey_ask',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('survey_id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('trigger_key', sa.String(length=80), nullable=False),
    sa.Column('touchpoint', sa.String(length=16), nullable=False),
    sa.Column('reward_id', sa.Integer(), nullable=True),
    sa.Column('campaign_id', sa.Integer(), nullable=True),
    sa.Column('triggered_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('asked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('score', sa.Integer(), nullable=True),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('followup_enc', sa.Text(), nullable=True),
    sa.Column('ticket_id', sa.Integer(), nullable=True),
    sa.Column('thanked', sa.Integer(), nullable=False),
    sa.CheckConstraint("state IN ('pending', 'asked', 'answered', 'declined', 'dropped', 'skipped', 'expired')",
                       name='ck_survey_ask_state'),
    sa.ForeignKeyConstraint(['member_id'], ['member.id']),
    sa.ForeignKeyConstraint(['survey_id'], ['survey.id']),
    sa.ForeignKeyConstraint(['ticket_id'], ['ticket.id']),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('survey_id', 'member_id', 'trigger_key', name='uq_survey_ask_trigger'),
    )
    op.create_index('ix_survey_ask_member_state', 'survey_ask', ['member_id', 'state'])
    op.create_index('ix_survey_ask_member_asked', 'survey_ask', ['member_id', 'asked_at'])
    op.create_index('ix_survey_ask_survey_state', 'survey_ask', ['survey_id', 'state'])
    with op.batch_alter_table('member') as batch:
        batch.add_column(sa.Column('survey_due_until', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('ticket') as batch:
        batch.drop_constraint('ck_ticket_kind', type_='check')
        batch.create_check_constraint('ck_ticket_kind', "kind IN ('ticket', 'hand-off', 'survey')")


def downgrade() -> None:
    op.execute("UPDATE survey_ask SET ticket_id = NULL")
    op.execute("DELETE FROM ticket_message WHERE ticket_id IN (SELECT id FROM ticket WHERE kind = 'survey')")
    op.execute("DELETE FROM ticket WHERE kind = 'survey'")
    with op.batch_alter_table('ticket') as batch:
        batch.drop_constraint('ck_ticket_kind', type_='check')
        batch.create_check_constraint('ck_ticket_kind', "kind IN ('ticket', 'hand-off')")
    with op.batch_alter_table('member') as batch:
        batch.drop_column('survey_due_until')
    op.drop_index('ix_survey_ask_survey_state', table_name='survey_ask')
    op.drop_index('ix_survey_ask_member_asked', table_name='survey_ask')
    op.drop_index('ix_survey_ask_member_state', table_name='survey_ask')
    op.drop_table('survey_ask')
    op.drop_index('ix_survey_touchpoint_status', table_name='survey')
    op.drop_table('survey')
