"""scheduler failover: the sender's renewed claim and in-flight mark on outbox, job_run per job

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23

A dead sender's rows are taken over when its short lease (lease_until) lapses; in_flight tells a
send that may have reached WeChat from one that never started. job_run records how far each job
has run, so a new leader catches up a due time that passed while nobody led.
"""
from __future__ import annotations

from datetime import timedelta

from alembic import op
import sqlalchemy as sa



revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox') as batch:
        batch.add_column(sa.Column('claimed_by', sa.String(length=16), nullable=True))
        batch.add_column(sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('in_flight', sa.String(length=16), nullable=True))
        batch.add_column(sa.Column('in_flight_at', sa.DateTime(timezone=True), nullable=True))
    # Claims made before lease_until existed had a 5-minute lease: give them one, so the sender's
    # recovery query needs no case for a NULL lease. Computed in Python: works on SQLite and PostgreSQL.
    outbox = sa.table(
        'outbox', sa.column('id', sa.Integer), sa.column('status', sa.String),
        sa.column('claimed_at', sa.DateTime(timezone=True)), sa.column('lease_until', sa.DateTime(timezone=True)),
    )
    bind = op.get_bind()
    claimed = bind.execute(
        sa.select(outbox.c.id, outbox.c.claimed_at)
        .where(outbox.c.status == 'sending').where(outbox.c.claimed_at.is_not(None))
    ).all()
    for row_id, claimed_at in claimed:
        bind.execute(
            outbox.update().where(outbox.c.id == row_id).values(lease_until=claimed_at + timedelta(minutes=5))
        )
    op.create_table(
        'job_run',
        sa.Column('name', sa.String(length=32), nullable=False),
        sa.Column('done_through', sa.DateTime(timezone=True), nullable=False),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('name'),
    )


def downgrade() -> None:
    op.drop_table('job_run')
    with op.batch_alter_table('outbox') as batch:
        batch.drop_column('in_flight_at')
        batch.drop_column('in_flight')
        batch.drop_column('lease_until')
        batch.drop_column('claimed_by')
