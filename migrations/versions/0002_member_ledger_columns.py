"""member columns kept by the ledger, so that a check-in reads no table but the member's row

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22

earned_total bounds the tier query, cap_day/cap_earned replace the daily-cap sum, expiry_check_at
says when the member's earliest live lot lapses, checkin_day/checkin_streak replace the look-up of
yesterday's check-in, winback_until says whether an offer is open. Existing rows are filled from the
tables these columns summarise; cap_day stays NULL (the ledger then sums the day's entries once).
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

# As storage.ledger.QUALIFYING_KINDS when this revision was written (a migration must not import it).
QUALIFYING_KINDS = "'signup', 'referral', 'checkin', 'streak', 'birthday', 'campaign', 'winback', 'purchase'"


def upgrade() -> None:
    op.add_column('member', sa.Column('earned_total', sa.Integer(), nullable=False, server_default='0'))
    op.add_column('member', sa.Column('cap_day', sa.Date(), nullable=True))
    op.add_column('member', sa.Column('cap_earned', sa.Integer(), nullable=False, server_default='0'))
    op.add_column('member', sa.Column('expiry_check_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('member', sa.Column('checkin_day', sa.Date(), nullable=True))
    op.add_column('member', sa.Column('checkin_streak', sa.Integer(), nullable=False, server_default='0'))
    op.add_column('member', sa.Column('winback_until', sa.DateTime(timezone=True), nullable=True))
    # One pass over member (each UPDATE rewrites every row: one, not four).
    op.execute(
        "UPDATE member SET"
        " earned_total = COALESCE((SELECT SUM(e.delta) FROM ledger_entry e"
        f" WHERE e.member_id = member.id AND e.kind IN ({QUALIFYING_KINDS})), 0),"
        " expiry_check_at = (SELECT MIN(l.expires_at) FROM points_lot l"
        " WHERE l.member_id = member.id AND l.remaining > 0),"
        " checkin_day = (SELECT MAX(c.day) FROM checkin c WHERE c.member_id = member.id),"
        " checkin_streak = COALESCE((SELECT c.streak FROM checkin c WHERE c.member_id = member.id"
        " ORDER BY c.day DESC LIMIT 1), 0),"
        " winback_until = (SELECT MAX(w.valid_until) FROM winback_offer w"
        " WHERE w.member_id = member.id AND w.redeemed_at IS NULL)"
    )


def downgrade() -> None:
    for column in ('winback_until', 'checkin_streak', 'checkin_day', 'expiry_check_at', 'cap_earned',
                   'cap_day', 'earned_total'):
        op.drop_column('member', column)
