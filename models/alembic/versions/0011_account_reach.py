"""several QQ accounts: which account reaches which chat, and which accounts are present

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.types

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('account_presence',
    sa.Column('account_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('last_seen_at', models.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('account_id')
    )
    op.create_table('account_reach',
    sa.Column('account_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('target_type', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('target_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('last_seen_at', models.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('account_id', 'target_type', 'target_id')
    )
    # The outbox claim asks "who reaches this target" for every due row.
    with op.batch_alter_table('account_reach', schema=None) as batch_op:
        batch_op.create_index('ix_account_reach_target', ['target_type', 'target_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('account_reach', schema=None) as batch_op:
        batch_op.drop_index('ix_account_reach_target')

    op.drop_table('account_reach')
    op.drop_table('account_presence')
