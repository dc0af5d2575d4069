"""sms_consents: hotline callers who agreed to case updates by SMS

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 15:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sms_consents",
        sa.Column("channel", sa.String(32), primary_key=True),
        sa.Column("external_id", sa.String(128), primary_key=True),
        sa.Column("consented_at", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sms_consents")
