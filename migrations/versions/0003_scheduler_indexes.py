"""indexes for the scheduler at a million members: the sender's claim, the birthday job's pages

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22

Measured by bench/scheduler_jobs.py (docs/benchmarks.md): with 20,000 pushes due, the claim of a batch
of 20 took 10.2 ms sorting the backlog, 0.06 ms with ix_outbox_pending; the birthday pages come in id
order from the index instead of a sort (0.20 -> 0.06 s a day, 0.58 -> 0.17 s on 28 February).
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        'ix_outbox_pending', 'outbox', [sa.text('priority DESC'), 'id'], unique=False,
        postgresql_where=sa.text("status = 'pending'"), sqlite_where=sa.text("status = 'pending'"),
    )
    op.drop_index('ix_member_birthday', table_name='member')
    op.create_index('ix_member_birthday', 'member', ['birthday_month', 'birthday_day', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_member_birthday', table_name='member')
    op.create_index('ix_member_birthday', 'member', ['birthday_month', 'birthday_day'], unique=False)
    op.drop_index('ix_outbox_pending', table_name='outbox')
