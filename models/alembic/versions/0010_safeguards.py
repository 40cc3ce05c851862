"""merchant safeguards: bans, per-variant purchase limits and low-stock alerts

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.types

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('ban',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('shop_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('banned_by', sa.BigInteger(), nullable=False),
    sa.Column('banned_at', models.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['shop_id'], ['shop.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('shop_id', 'user_id', name='uq_ban_shop_user')
    )
    op.create_table('ban_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('shop_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('action', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('actor_id', sa.BigInteger(), nullable=True),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('at', models.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['shop_id'], ['shop.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('ban_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ban_event_user_id'), ['user_id'], unique=False)

    op.create_table('variant_guard',
    sa.Column('variant_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('shop_id', sa.Integer(), nullable=False),
    sa.Column('purchase_limit', sa.Integer(), nullable=True),
    sa.Column('low_stock_threshold', sa.Integer(), nullable=True),
    sa.Column('low_stock_alerted', sa.Boolean(), nullable=False),
    sa.Column('low_stock_alerts', sa.Integer(), nullable=False),
    sa.Column('updated_at', models.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['shop_id'], ['shop.id'], ),
    sa.ForeignKeyConstraint(['variant_id'], ['variant.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('variant_id')
    )
    # "Bought together" on /详情 starts from the order lines of one item.
    with op.batch_alter_table('order_line', schema=None) as batch_op:
        batch_op.create_index('ix_order_line_item_id', ['item_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('order_line', schema=None) as batch_op:
        batch_op.drop_index('ix_order_line_item_id')

    op.drop_table('variant_guard')
    with op.batch_alter_table('ban_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ban_event_user_id'))

    op.drop_table('ban_event')
    op.drop_table('ban')
