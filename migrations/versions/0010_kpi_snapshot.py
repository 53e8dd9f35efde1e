"""reports: interaction days, daily KPI snapshots, the member's deletion time

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02

Issue 15. `interaction_day` is written with the touch (one row per member per local day);
`kpi_snapshot` holds one JSON row of dashboard figures per local day; `member.deleted_at` dates a deletion
so that a day's deletions can be counted again later.
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'interaction_day',
        sa.Column('member_id', sa.Integer(), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(['member_id'], ['member.id']),
        sa.PrimaryKeyConstraint('member_id', 'day'),
    )
    op.create_index(op.f('ix_interaction_day_day'), 'interaction_day', ['day'], unique=False)
    op.create_table(
        'kpi_snapshot',
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('figures', sa.Text(), nullable=False),
        sa.Column('computed_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('day'),
    )
    with op.batch_alter_table('member') as batch:
        batch.add_column(sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('member') as batch:
        batch.drop_column('deleted_at')
    op.drop_table('kpi_snapshot')
    op.drop_index(op.f('ix_interaction_day_day'), table_name='interaction_day')
    op.drop_table('interaction_day')
