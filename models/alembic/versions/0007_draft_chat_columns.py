"""draft chat columns and draft lines

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 10:00:00

The order summary's chat becomes a real column (`group_id`, NULL for a private chat)
instead of the `chat_key` text ("p" / "g:<id>"), and its lines a child table
(`checkout_draft_line`) instead of the hand-encoded `lines` text
("variant:quantity:price shown", the price missing in rows older than the price check).
Existing summaries are carried over, so nobody's pending 确认 is lost by the upgrade.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Lightweight views of the tables as this migration sees them (never the models: they
# describe the newest schema, not the one being migrated).
_old_draft = sa.table(
    'checkout_draft',
    sa.column('id', sa.Integer()),
    sa.column('chat_key', sa.String()),
    sa.column('lines', sa.String()),
    sa.column('group_id', sa.BigInteger()),
)
_variant = sa.table('variant', sa.column('id', sa.Integer()), sa.column('price_fen', sa.Integer()))
_draft_line = sa.table(
    'checkout_draft_line',
    sa.column('draft_id', sa.Integer()),
    sa.column('position', sa.Integer()),
    sa.column('variant_id', sa.Integer()),
    sa.column('quantity', sa.Integer()),
    sa.column('unit_price_fen', sa.Integer()),
)

# See models.tables.CheckoutDraft: private chats (NULL) must collide with each other.
_CHAT_USER_COLUMNS = ['shop_id', sa.text('coalesce(group_id, 0)'), 'user_id']


def _group_of(chat_key: str) -> int | None:
    return int(chat_key[2:]) if chat_key.startswith('g:') else None


def _chat_key_of(group_id: int | None) -> str:
    return f'g:{group_id}' if group_id else 'p'


def upgrade() -> None:
    connection = op.get_bind()
    drafts = connection.execute(sa.select(_old_draft.c.id, _old_draft.c.chat_key, _old_draft.c.lines)).all()
    prices = dict(connection.execute(sa.select(_variant.c.id, _variant.c.price_fen)).all())
    lines: list[dict[str, int]] = []
    unconfirmable: list[int] = []
    for draft_id, _, encoded in drafts:
        parsed = []
        for position, entry in enumerate(filter(None, encoded.split(',')), start=1):
            fields = entry.split(':')
            variant_id, quantity = int(fields[0]), int(fields[1])
            # An old row without the price shown: the summary showed the current price.
            shown = int(fields[2]) if len(fields) > 2 else prices.get(variant_id)
            parsed.append((position, variant_id, quantity, shown))
        if not parsed or any(shown is None for *_, shown in parsed):
            # Nothing in it, or its variant is gone: 确认 could never have placed it.
            unconfirmable.append(draft_id)
            continue
        lines += [
            {
                'draft_id': draft_id,
                'position': position,
                'variant_id': variant_id,
                'quantity': quantity,
                'unit_price_fen': shown,
            }
            for position, variant_id, quantity, shown in parsed
        ]

    with op.batch_alter_table('checkout_draft', schema=None) as batch_op:
        batch_op.add_column(sa.Column('group_id', sa.BigInteger(), nullable=True))
    for draft_id, chat_key, _ in drafts:
        connection.execute(
            _old_draft.update()
            .where(_old_draft.c.id == draft_id)
            .values(group_id=_group_of(chat_key))
        )
    if unconfirmable:
        connection.execute(_old_draft.delete().where(_old_draft.c.id.in_(unconfirmable)))

    # On SQLite this rebuilds checkout_draft (copy, drop, rename). It runs before
    # checkout_draft_line exists: with foreign_keys=ON, dropping the old table would
    # otherwise cascade-delete the lines just converted.
    with op.batch_alter_table('checkout_draft', schema=None) as batch_op:
        batch_op.drop_constraint('uq_draft_chat_user', type_='unique')
        batch_op.drop_column('lines')
        batch_op.drop_column('chat_key')
    op.create_index('uq_draft_chat_user', 'checkout_draft', _CHAT_USER_COLUMNS, unique=True)

    op.create_table('checkout_draft_line',
    sa.Column('draft_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('position', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('variant_id', sa.Integer(), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('unit_price_fen', sa.Integer(), nullable=False),
    sa.CheckConstraint('quantity > 0', name='ck_draft_line_quantity_positive'),
    sa.ForeignKeyConstraint(['draft_id'], ['checkout_draft.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['variant_id'], ['variant.id'], ),
    sa.PrimaryKeyConstraint('draft_id', 'position')
    )
    if lines:
        connection.execute(_draft_line.insert(), lines)


def downgrade() -> None:
    connection = op.get_bind()
    drafts = connection.execute(sa.select(_old_draft.c.id, _old_draft.c.group_id)).all()
    encoded: dict[int, list[str]] = {}
    for draft_id, _, variant_id, quantity, shown in connection.execute(
        sa.select(
            _draft_line.c.draft_id,
            _draft_line.c.position,
            _draft_line.c.variant_id,
            _draft_line.c.quantity,
            _draft_line.c.unit_price_fen,
        ).order_by(_draft_line.c.draft_id, _draft_line.c.position)
    ):
        encoded.setdefault(draft_id, []).append(f'{variant_id}:{quantity}:{shown}')
    # Before checkout_draft is rebuilt below (the cascade, as in upgrade).
    op.drop_table('checkout_draft_line')
    op.drop_index('uq_draft_chat_user', table_name='checkout_draft')

    with op.batch_alter_table('checkout_draft', schema=None) as batch_op:
        batch_op.add_column(sa.Column('chat_key', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True))
        batch_op.add_column(sa.Column('lines', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True))
    for draft_id, group_id in drafts:
        connection.execute(
            _old_draft.update()
            .where(_old_draft.c.id == draft_id)
            .values(chat_key=_chat_key_of(group_id), lines=','.join(encoded.get(draft_id, [])))
        )
    with op.batch_alter_table('checkout_draft', schema=None) as batch_op:
        batch_op.alter_column('chat_key', existing_type=sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False)
        batch_op.alter_column('lines', existing_type=sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False)
        batch_op.drop_column('group_id')
        batch_op.create_unique_constraint('uq_draft_chat_user', ['shop_id', 'chat_key', 'user_id'])
