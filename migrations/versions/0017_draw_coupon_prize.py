"""draw coupon prize: campaign.reward_id, a lucky draw's prize as a coupon instead of points

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02

Issue 17 item 1 (draw prize). A lucky draw whose reward_id is set gives each winner that reward through
Rewards.grant (`grant:draw:<member>:<campaign code>`); its `points` are then the fallback a winner gets when
the coupon cannot be granted (0: no fallback), and its budget counts only those fallback points.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('campaign', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reward_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_campaign_reward_id', 'reward', ['reward_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('campaign', schema=None) as batch_op:
        batch_op.drop_constraint('fk_campaign_reward_id', type_='foreignkey')
        batch_op.drop_column('reward_id')
