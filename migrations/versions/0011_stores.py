"""stores and the till: store table, redemption.store/used_by, staff clerks, order store/channel/items

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02

Issue 17 item 2. The staff role CHECK gains 'clerk' (beside 0009's 'service') (a clerk must name a store); batch mode recreates the
table on SQLite, ALTER on PostgreSQL.
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('store',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=60), nullable=False),
    sa.Column('city', sa.String(length=40), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('secret_hash', sa.String(length=64), nullable=True),
    sa.Column('secret_set_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('code', name='uq_store_code'),
    sa.UniqueConstraint('secret_hash', name='uq_store_secret_hash'),
    )
    with op.batch_alter_table('redemption') as batch:
        batch.add_column(sa.Column('store', sa.String(length=32), nullable=True))
        batch.add_column(sa.Column('used_by', sa.String(length=64), nullable=True))
    op.create_index('ix_redemption_store_used', 'redemption', ['store', 'used_at'])
    with op.batch_alter_table('purchase_order') as batch:
        batch.add_column(sa.Column('store', sa.String(length=32), nullable=True))
        batch.add_column(sa.Column('channel', sa.String(length=32), nullable=True))
    op.create_index('ix_purchase_order_store', 'purchase_order', ['store'])
    op.create_table('order_item',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('sku', sa.String(length=64), nullable=False),
    sa.Column('category', sa.String(length=40), nullable=False),
    sa.Column('qty', sa.Integer(), nullable=False),
    sa.Column('amount_fen', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['purchase_order.id']),
    sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_order_item_order_id', 'order_item', ['order_id'])
    with op.batch_alter_table('staff') as batch:
        batch.add_column(sa.Column('store', sa.String(length=32), nullable=True))
        batch.drop_constraint('ck_staff_role', type_='check')
        batch.create_check_constraint('ck_staff_role', "role IN ('manager', 'admin', 'service', 'clerk')")
        batch.create_check_constraint('ck_staff_clerk_store', "role != 'clerk' OR store IS NOT NULL")


def downgrade() -> None:
    op.execute("DELETE FROM staff WHERE role = 'clerk'")
    with op.batch_alter_table('staff') as batch:
        batch.drop_constraint('ck_staff_clerk_store', type_='check')
        batch.drop_constraint('ck_staff_role', type_='check')
        batch.create_check_constraint('ck_staff_role', "role IN ('manager', 'admin', 'service')")
        batch.drop_column('store')
    op.drop_index('ix_order_item_order_id', table_name='order_item')
    op.drop_table('order_item')
    op.drop_index('ix_purchase_order_store', table_name='purchase_order')
    with op.batch_alter_table('purchase_order') as batch:
        batch.drop_column('channel')
        batch.drop_column('store')
    op.drop_index('ix_redemption_store_used', table_name='redemption')
    with op.batch_alter_table('redemption') as batch:
        batch.drop_column('used_by')
        batch.drop_column('store')
    op.drop_table('store')
