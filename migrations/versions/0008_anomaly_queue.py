"""anomaly queue: anomaly.announced_at (the operations robot's announcer), member.merged_into (guided merge)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02

Issue 14 item 6. Anomalies raised before this revision count as announced (announced_at = created_at), so
configuring OPS_WECOM_ROBOT later does not flood the group with the past.
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('anomaly') as batch:
        batch.add_column(sa.Column('announced_at', sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE anomaly SET announced_at = created_at")
    op.create_index('ix_anomaly_unannounced', 'anomaly', ['id'], postgresql_where=sa.text('announced_at IS NULL'),
                    sqlite_where=sa.text('announced_at IS NULL'))
    with op.batch_alter_table('member') as batch:
        batch.add_column(sa.Column('merged_into', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('member') as batch:
        batch.drop_column('merged_into')
    op.drop_index('ix_anomaly_unannounced', table_name='anomaly')
    with op.batch_alter_table('anomaly') as batch:
        batch.drop_column('announced_at')
