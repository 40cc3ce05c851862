"""virtual goods: card keys

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.types

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing items and orders are physical goods. A plain ADD COLUMN (SQLite has it):
    # a batch copy of `item` or `shop_order` would drop a table other rows point at.
    op.add_column('item', sa.Column('virtual', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column('shop_order', sa.Column('virtual', sa.Boolean(), nullable=False, server_default=sa.false()))

    op.create_table('card_key',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('shop_id', sa.Integer(), nullable=False),
    sa.Column('variant_id', sa.Integer(), nullable=False),
    sa.Column('secret', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('sealed', sa.Boolean(), nullable=False),
    sa.Column('key_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=True),
    sa.Column('imported_by', sa.BigInteger(), nullable=False),
    sa.Column('imported_at', models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('sold_at', models.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['order_id'], ['shop_order.id'], ),
    sa.ForeignKeyConstraint(['shop_id'], ['shop.id'], ),
    sa.ForeignKeyConstraint(['variant_id'], ['variant.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('variant_id', 'key_hash', name='uq_card_key_variant_hash')
    )
    with op.batch_alter_table('card_key', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_card_key_order_id'), ['order_id'], unique=False)
        batch_op.create_index('ix_card_key_variant_order', ['variant_id', 'order_id'], unique=False)

    op.create_table('card_delivery',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('key_count', sa.Integer(), nullable=False),
    sa.Column('delivered_at', models.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['shop_order.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('order_id')
    )


def downgrade() -> None:
    op.drop_table('card_delivery')
    with op.batch_alter_table('card_key', schema=None) as batch_op:
        batch_op.drop_index('ix_card_key_variant_order')
        batch_op.drop_index(batch_op.f('ix_card_key_order_id'))

    op.drop_table('card_key')
    for table in ('shop_order', 'item'):
        if op.get_bind().dialect.name == 'sqlite':
            # SQLite 3.35+ drops a column in place; a batch copy could not drop the table.
            op.execute(f'ALTER TABLE {table} DROP COLUMN "virtual"')
        else:
            op.drop_column(table, 'virtual')
