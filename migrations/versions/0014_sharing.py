"""sharing: member.channel / share_qr_*, campaign_member.referrer_id, channel, share_scan

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02

Issue 17 item 6: a member's own temporary `ref_` QR poster kept on the member row, the channel that first
brought a member, the sharer of a campaign join, operators' channel QR codes, and every sharing scan.
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('member', schema=None) as batch_op:
        batch_op.add_column(sa.Column('channel', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('share_qr_url', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('share_qr_expires_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('campaign_member', schema=None) as batch_op:
        batch_op.add_column(sa.Column('referrer_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_campaign_member_referrer_id', 'member', ['referrer_id'], ['id'])
        batch_op.create_index('ix_campaign_member_referrer_id', ['referrer_id'], unique=False)
    op.create_table('channel',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('label', sa.String(length=60), nullable=False),
    sa.Column('qr_url', sa.String(length=255), nullable=True),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name', name='uq_channel_name'),
    )
    op.create_table('share_scan',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('openid', sa.String(length=64), nullable=False),
    sa.Column('referrer_id', sa.Integer(), nullable=True),
    sa.Column('channel', sa.String(length=32), nullable=True),
    sa.Column('campaign_id', sa.Integer(), nullable=True),
    sa.Column('follow', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaign.id'], ),
    sa.ForeignKeyConstraint(['referrer_id'], ['member.id'], ),
    sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_share_scan_referrer', 'share_scan', ['referrer_id'])
    op.create_index('ix_share_scan_channel', 'share_scan', ['channel'])


def downgrade() -> None:
    op.drop_index('ix_share_scan_channel', table_name='share_scan')
    op.drop_index('ix_share_scan_referrer', table_name='share_scan')
    op.drop_table('share_scan')
    op.drop_table('channel')
    with op.batch_alter_table('campaign_member', schema=None) as batch_op:
        batch_op.drop_index('ix_campaign_member_referrer_id')
        batch_op.drop_constraint('fk_campaign_member_referrer_id', type_='foreignkey')
        batch_op.drop_column('referrer_id')
    with op.batch_alter_table('member', schema=None) as batch_op:
        batch_op.drop_column('share_qr_expires_at')
        batch_op.drop_column('share_qr_url')
        batch_op.drop_column('channel')
