"""redemption_quote: the chat's quotes in the database, so a confirmation survives the loss of flow state

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22

Issue 12: a replayed `是` after Redis lost its data redeemed twice. The quote's id is now the redemption's
key, and the quoting message's delivery key finds the same quote again on a replay.
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'redemption_quote',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('member_id', sa.Integer(), nullable=False),
        sa.Column('reward_id', sa.Integer(), nullable=False),
        sa.Column('request_key', sqlmodel.sql.sqltypes.AutoString(length=160), nullable=False),
        sa.Column('cost', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['member_id'], ['member.id']),
        sa.ForeignKeyConstraint(['reward_id'], ['reward.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('request_key', name='uq_redemption_quote_request_key'),
    )
    op.create_index('ix_redemption_quote_member', 'redemption_quote', ['member_id', 'created_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_redemption_quote_member', table_name='redemption_quote')
    op.drop_table('redemption_quote')
