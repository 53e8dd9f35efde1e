"""tickets: ticket and ticket_message (member service, issue 18), and the staff role `service`

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02

The staff role CHECK is rebuilt (batch mode recreates the table on SQLite, alters it on PostgreSQL).
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def _staff_roles(roles: str) -> None:
    with op.batch_alter_table('staff') as batch:
        batch.drop_constraint('ck_staff_role', type_='check')
        batch.create_check_constraint('ck_staff_role', sa.text(f"role IN ({roles})"))


def upgrade() -> None:
    _staff_roles("'manager', 'admin', 'service'")
    op.create_table('ticket',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('openid', sa.String(length=64), nullable=False),
    sa.Column('source', sa.String(length=8), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('category', sa.String(length=16), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('order_id', sa.String(length=64), nullable=True),
    sa.Column('assigned_to', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('answer_due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('resolve_due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('first_answer_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('escalated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('breach', sa.String(length=16), nullable=True),
    sa.Column('rating', sa.Integer(), nullable=True),
    sa.Column('rated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reopens', sa.Integer(), nullable=False),
    sa.Column('supervisor', sa.Boolean(), nullable=False),
    sa.CheckConstraint("state IN ('open', 'answered', 'resolved')", name='ck_ticket_state'),
    sa.CheckConstraint("kind IN ('ticket', 'hand-off')", name='ck_ticket_kind'),
    sa.CheckConstraint('rating IS NULL OR rating BETWEEN 1 AND 5', name='ck_ticket_rating'),
    sa.ForeignKeyConstraint(['member_id'], ['member.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('code', name='uq_ticket_code')
    )
    op.create_index('ix_ticket_member_state', 'ticket', ['member_id', 'state'])
    op.create_index('ix_ticket_state_created', 'ticket', ['state', 'created_at'])
    op.create_table('ticket_message',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('openid', sa.String(length=64), nullable=False),
    sa.Column('author', sa.String(length=8), nullable=False),
    sa.Column('author_name', sa.String(length=64), nullable=False),
    sa.Column('body_enc', sa.Text(), nullable=False),
    sa.Column('media', sa.String(length=600), nullable=True),
    sa.Column('for_member', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("author IN ('member', 'staff', 'system')", name='ck_ticket_message_author'),
    sa.ForeignKeyConstraint(['ticket_id'], ['ticket.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_ticket_message_ticket', 'ticket_message', ['ticket_id', 'id'])
    op.create_index('ix_ticket_message_undelivered', 'ticket_message', ['openid', 'delivered_at'])


def downgrade() -> None:
    op.drop_index('ix_ticket_message_undelivered', table_name='ticket_message')
    op.drop_index('ix_ticket_message_ticket', table_name='ticket_message')
    op.drop_table('ticket_message')
    op.drop_index('ix_ticket_state_created', table_name='ticket')
    op.drop_index('ix_ticket_member_state', table_name='ticket')
    op.drop_table('ticket')
    op.execute("DELETE FROM staff WHERE role = 'service'")
    _staff_roles("'manager', 'admin'")
