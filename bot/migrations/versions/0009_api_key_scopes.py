"""api_keys.scopes: what a database key may do (open311, chat, suggest, admin)

Keys made from now on carry the scopes chosen at `gridbot apikeys add NAME --scope …`
(open311 alone by default, and a key inserted without scopes gets that least privilege).
Keys that exist when this runs get "open311,chat": before scopes every database key worked
on Open311 and on /api/v1, so integrations keep working as they did instead of breaking
silently. The suggest scope (hotline suggestions, /api/v1/suggest/confirm stores training
examples) is not given to them: grant it by making a new key with --scope suggest.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

EXISTING_KEYS = "open311,chat"  # what every key could do before scopes


def upgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("scopes", sa.String(length=64), nullable=False,
                                      server_default="open311"))
    op.execute(sa.text("UPDATE api_keys SET scopes = :scopes").bindparams(
        scopes=EXISTING_KEYS))


def downgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_column("scopes")
