"""area_follows: people following an area for a daily note of its new and closed cases

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 13:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "area_follows",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("reporter_id", sa.Integer, sa.ForeignKey("reporters.id"), nullable=False,
                  index=True),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("place", sa.String(100), nullable=False),
        sa.Column("lat", sa.Float, nullable=False),
        sa.Column("lon", sa.Float, nullable=False),
        sa.Column("radius_m", sa.Float, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("noted_until", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("area_follows")
