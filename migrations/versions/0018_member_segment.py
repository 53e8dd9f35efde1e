"""member segment: the RFM class in a narrow table of its own; rfm_move keyed by (day, member)

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03

Issue 16 (performance). The first layering of 1,000,000 members took 202 s, most of it writing a new version
of every `member` row (ten indexes each). The class, its scores and the day it changed move to
`member_segment` (one narrow row per layered member, its primary key the only index); rfm_move's unique key
becomes (day, member_id), which also serves the flows report's range of days, so its own day index goes.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None

RFM_COLUMNS = ('rfm_since', 'rfm_m', 'rfm_f', 'rfm_r', 'rfm_class')


def upgrade() -> None:
    op.create_table('member_segment',
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('segment', sa.String(length=8), nullable=False),
    sa.Column('r', sa.Integer(), nullable=True),
    sa.Column('f', sa.Integer(), nullable=True),
    sa.Column('m', sa.Integer(), nullable=True),
    sa.Column('since', sa.Date(), nullable=False),
    sa.ForeignKeyConstraint(['member_id'], ['member.id'], ),
    sa.PrimaryKeyConstraint('member_id'),
    )
    op.execute(
        "INSERT INTO member_segment (member_id, segment, r, f, m, since) "
        "SELECT id, rfm_class, rfm_r, rfm_f, rfm_m, COALESCE(rfm_since, CURRENT_DATE) FROM member "
        "WHERE rfm_class IS NOT NULL"
    )
    # Plain ALTER TABLE ... DROP COLUMN (SQLite 3.35 and later have it): a batch copy of `member` would have to
    # drop the table every other table refers to, which SQLite refuses with its rows referred to.
    op.drop_index('ix_member_rfm_class', table_name='member')
    for column in RFM_COLUMNS:
        op.drop_column('member', column)
    op.drop_index('ix_rfm_move_day', table_name='rfm_move')
    with op.batch_alter_table('rfm_move', schema=None) as batch_op:
        batch_op.drop_constraint('uq_rfm_move_member_day', type_='unique')
        batch_op.create_unique_constraint('uq_rfm_move_day_member', ['day', 'member_id'])


def downgrade() -> None:
    with op.batch_alter_table('rfm_move', schema=None) as batch_op:
        batch_op.drop_constraint('uq_rfm_move_day_member', type_='unique')
        batch_op.create_unique_constraint('uq_rfm_move_member_day', ['member_id', 'day'])
    op.create_index('ix_rfm_move_day', 'rfm_move', ['day'])
    op.add_column('member', sa.Column('rfm_class', sa.String(length=8), nullable=True))
    op.add_column('member', sa.Column('rfm_r', sa.Integer(), nullable=True))
    op.add_column('member', sa.Column('rfm_f', sa.Integer(), nullable=True))
    op.add_column('member', sa.Column('rfm_m', sa.Integer(), nullable=True))
    op.add_column('member', sa.Column('rfm_since', sa.Date(), nullable=True))
    op.create_index('ix_member_rfm_class', 'member', ['rfm_class'])
    op.execute(
        "UPDATE member SET rfm_class = (SELECT segment FROM member_segment s WHERE s.member_id = member.id), "
        "rfm_r = (SELECT r FROM member_segment s WHERE s.member_id = member.id), "
        "rfm_f = (SELECT f FROM member_segment s WHERE s.member_id = member.id), "
        "rfm_m = (SELECT m FROM member_segment s WHERE s.member_id = member.id), "
        "rfm_since = (SELECT since FROM member_segment s WHERE s.member_id = member.id)"
    )
    op.drop_table('member_segment')
