"""marketing: member RFM and churn columns, rfm_move, member_list, broadcast, experiment, outbox arm

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02

Issue 16: the daily RFM layering and its history of moves, the churn stage of the staged win-back, uploaded
member lists, broadcasts (expanded into outbox rows that name their broadcast) and A/B experiments with their
stable assignments (an outbox row names its experiment and arm).
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ALTERs, not a batch: on SQLite a batch would rebuild `member`, which every table references.
    op.add_column('member', sa.Column('rfm_class', sa.String(length=8), nullable=True))
    op.add_column('member', sa.Column('rfm_r', sa.Integer(), nullable=True))
    op.add_column('member', sa.Column('rfm_f', sa.Integer(), nullable=True))
    op.add_column('member', sa.Column('rfm_m', sa.Integer(), nullable=True))
    op.add_column('member', sa.Column('rfm_since', sa.Date(), nullable=True))
    op.add_column('member', sa.Column('churn_risk', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column('member', sa.Column('churn_stage', sa.String(length=12), nullable=True))
    op.add_column('member', sa.Column('churn_stage_at', sa.DateTime(timezone=True), nullable=True))
    op.create_index('ix_member_rfm_class', 'member', ['rfm_class'])
    op.create_index('ix_member_churn_stage', 'member', ['churn_stage'])
    op.create_table('rfm_move',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('from_class', sa.String(length=8), nullable=True),
    sa.Column('to_class', sa.String(length=8), nullable=False),
    sa.ForeignKeyConstraint(['member_id'], ['member.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('member_id', 'day', name='uq_rfm_move_member_day'),
    )
    op.create_index('ix_rfm_move_day', 'rfm_move', ['day'])
    op.create_table('member_list',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=60), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('unknown', sa.Integer(), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    )
    op.create_table('member_list_entry',
    sa.Column('list_id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['list_id'], ['member_list.id'], ),
    sa.ForeignKeyConstraint(['member_id'], ['member.id'], ),
    sa.PrimaryKeyConstraint('list_id', 'member_id'),
    )
    op.create_table('experiment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=60), nullable=False),
    sa.Column('target', sa.String(length=32), nullable=False),
    sa.Column('arms', sa.Text(), nullable=False),
    sa.Column('holdout', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('stopped_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('running', 'stopped')", name='ck_experiment_status'),
    sa.CheckConstraint('holdout >= 0 AND holdout < 100', name='ck_experiment_holdout'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('request_id', name='uq_experiment_request_id'),
    )
    op.create_index('ix_experiment_target', 'experiment', ['target', 'status'])
    op.create_table('experiment_assignment',
    sa.Column('experiment_id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('arm', sa.String(length=16), nullable=False),
    sa.Column('assigned_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['experiment_id'], ['experiment.id'], ),
    sa.ForeignKeyConstraint(['member_id'], ['member.id'], ),
    sa.PrimaryKeyConstraint('experiment_id', 'member_id'),
    )
    op.create_index('ix_experiment_assignment_arm', 'experiment_assignment', ['experiment_id', 'arm'])
    op.create_table('broadcast',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=60), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('audience', sa.Text(), nullable=False),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('send_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deadline', sa.DateTime(timezone=True), nullable=True),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=True),
    sa.Column('experiment_id', sa.Integer(), nullable=True),
    sa.Column('cursor', sa.Integer(), nullable=False),
    sa.Column('queued', sa.Integer(), nullable=False),
    sa.Column('held_out', sa.Integer(), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expanded_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cancelled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cancelled_by', sa.String(length=64), nullable=True),
    sa.CheckConstraint("kind IN ('campaign', 'holiday', 'content')", name='ck_broadcast_kind'),
    sa.CheckConstraint("status IN ('scheduled', 'sending', 'sent', 'cancelled')", name='ck_broadcast_status'),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaign.id'], ),
    sa.ForeignKeyConstraint(['experiment_id'], ['experiment.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('request_id', name='uq_broadcast_request_id'),
    )
    op.create_index('ix_broadcast_due', 'broadcast', ['status', 'send_at'])
    # No foreign keys on these: SQLite cannot add one without rebuilding the outbox.
    op.add_column('outbox', sa.Column('broadcast_id', sa.Integer(), nullable=True))
    op.add_column('outbox', sa.Column('experiment_id', sa.Integer(), nullable=True))
    op.add_column('outbox', sa.Column('variant', sa.String(length=16), nullable=True))
    op.create_index('ix_outbox_broadcast_id', 'outbox', ['broadcast_id'])
    op.create_index('ix_outbox_experiment_id', 'outbox', ['experiment_id'])


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_experiment_id')
        batch_op.drop_index('ix_outbox_broadcast_id')
        batch_op.drop_column('variant')
        batch_op.drop_column('experiment_id')
        batch_op.drop_column('broadcast_id')
    op.drop_index('ix_broadcast_due', table_name='broadcast')
    op.drop_table('broadcast')
    op.drop_index('ix_experiment_assignment_arm', table_name='experiment_assignment')
    op.drop_table('experiment_assignment')
    op.drop_index('ix_experiment_target', table_name='experiment')
    op.drop_table('experiment')
    op.drop_table('member_list_entry')
    op.drop_table('member_list')
    op.drop_index('ix_rfm_move_day', table_name='rfm_move')
    op.drop_table('rfm_move')
    with op.batch_alter_table('member', schema=None) as batch_op:
        batch_op.drop_index('ix_member_churn_stage')
        batch_op.drop_index('ix_member_rfm_class')
        for column in ('churn_stage_at', 'churn_stage', 'churn_risk', 'rfm_since', 'rfm_m', 'rfm_f', 'rfm_r',
                       'rfm_class'):
            batch_op.drop_column(column)
