"""granted coupons: redemption.granted (why a coupon was given without points), a longer request_key

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02

Issue 17 item 1. A grant is a redemption of cost 0 keyed `grant:{reason}:{member}:{period}`; `granted`
holds the reason (birthday, tier, operator, ...) so the reports can tell a gift from a purchase. The key
of an operator's grant carries the form's request id, so request_key grows from 80 to 160 characters.
Item 1's coupon lapse reminder is a marketing push just under the points' expiry reminder: the outbox
priorities double (transactional 5 -> 10, expiry 4 -> 8, birthday 3 -> 6, ...) to make room for it at 7.
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('redemption') as batch:
        batch.add_column(sa.Column('granted', sa.String(length=16), nullable=True))
        batch.alter_column('request_key', existing_type=sa.String(length=80), type_=sa.String(length=160),
                           existing_nullable=False)
    op.execute("UPDATE outbox SET priority = priority * 2")


def downgrade() -> None:
    op.execute("UPDATE outbox SET priority = priority / 2")
    with op.batch_alter_table('redemption') as batch:
        batch.alter_column('request_key', existing_type=sa.String(length=160), type_=sa.String(length=80),
                           existing_nullable=False)
        batch.drop_column('granted')
