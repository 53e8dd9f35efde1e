"""operator console: operator accounts, the append-only audit log, anomaly states, tier holds, ledger actor

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02

Issue 14. The audit table refuses UPDATE and DELETE by trigger on both backends, so "append-only" does not
rest on every caller's good manners.
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

PG_GUARDS = (  # one statement per call: asyncpg prepares each
    "CREATE FUNCTION audit_append_only() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'audit is append-only'; END;"
    " $$ LANGUAGE plpgsql",
    "CREATE TRIGGER audit_no_update BEFORE UPDATE OR DELETE ON audit FOR EACH ROW EXECUTE FUNCTION audit_append_only()",
)
SQLITE_GUARDS = (
    "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END",
    "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END",
)


def upgrade() -> None:
    op.create_table(
        'operator',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column('role', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('store', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column('password_hash', sa.Text(), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('password_changed_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_sign_in_at', sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("role IN ('admin', 'operator', 'analyst', 'clerk')", name='ck_operator_role'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('name', name='uq_operator_name'),
    )
    op.create_table(
        'audit',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('actor_role', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('action', sqlmodel.sql.sqltypes.AutoString(length=48), nullable=False),
        sa.Column('target', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column('before', sa.Text(), nullable=True),
        sa.Column('after', sa.Text(), nullable=True),
        sa.Column('client', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_audit_at', 'audit', ['at'])
    op.create_index('ix_audit_actor_at', 'audit', ['actor', 'at'])
    op.create_index('ix_audit_target', 'audit', ['target'])
    bind = op.get_bind()
    for statement in PG_GUARDS if bind.dialect.name == 'postgresql' else SQLITE_GUARDS:
        op.execute(statement)
    with op.batch_alter_table('anomaly') as batch:
        batch.add_column(sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False,
                                   server_default='open'))
        batch.add_column(sa.Column('note', sa.Text(), nullable=True))
        batch.add_column(sa.Column('handled_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch.add_column(sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True))
        batch.create_check_constraint('ck_anomaly_state', "state IN ('open', 'acknowledged', 'resolved')")
        batch.create_index('ix_anomaly_state_created', ['state', 'created_at'])
    with op.batch_alter_table('member') as batch:
        batch.add_column(sa.Column('tier_hold_until', sa.Date(), nullable=True))
    with op.batch_alter_table('ledger_entry') as batch:
        batch.add_column(sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('ledger_entry') as batch:
        batch.drop_column('actor')
    with op.batch_alter_table('member') as batch:
        batch.drop_column('tier_hold_until')
    with op.batch_alter_table('anomaly') as batch:
        batch.drop_index('ix_anomaly_state_created')
        batch.drop_constraint('ck_anomaly_state', type_='check')
        for column in ('resolved_at', 'acknowledged_at', 'handled_by', 'note', 'state'):
            batch.drop_column(column)
    bind = op.get_bind()
    if bind.dialect.name == 'postgresql':
        op.execute("DROP TRIGGER IF EXISTS audit_no_update ON audit")
        op.execute("DROP FUNCTION IF EXISTS audit_append_only()")
    op.drop_table('audit')
    op.drop_table('operator')
