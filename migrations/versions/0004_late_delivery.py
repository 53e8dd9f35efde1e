"""late_delivery: a message past its reply deadline, held durably until its replies are in the outbox

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22

WeChat is told `success` once the deadline passes, so the delivery must survive its worker: this row is
written before that answer, completed with the outbox rows, and swept up when its lease lapses (issue 12).
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('late_delivery',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dedupe_key', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('inbound', sa.Text(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('dedupe_key', name='uq_late_delivery_dedupe_key')
    )
    with op.batch_alter_table('late_delivery', schema=None) as batch_op:
        batch_op.create_index('ix_late_delivery_due', ['status', 'lease_until'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('late_delivery', schema=None) as batch_op:
        batch_op.drop_index('ix_late_delivery_due')
    op.drop_table('late_delivery')
