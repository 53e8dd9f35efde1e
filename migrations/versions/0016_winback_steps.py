"""winback steps: each stage of a member's win-back episode, once per member, stage and day

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02

Issue 16 item 2: the staged win-back (warn, recall with points, recall with a coupon, dormant) and its report
per stage.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('winback_step',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=80), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('stage', sa.String(length=12), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('held_out', sa.Boolean(), nullable=False),
    sa.CheckConstraint("stage IN ('warn', 'recall1', 'recall2', 'dormant')", name='ck_winback_step_stage'),
    sa.ForeignKeyConstraint(['member_id'], ['member.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key', name='uq_winback_step_key'),
    )
    op.create_index('ix_winback_step_stage_at', 'winback_step', ['stage', 'at'])
    op.create_index('ix_winback_step_member', 'winback_step', ['member_id', 'at'])


def downgrade() -> None:
    op.drop_index('ix_winback_step_member', table_name='winback_step')
    op.drop_index('ix_winback_step_stage_at', table_name='winback_step')
    op.drop_table('winback_step')
