"""cases.source (citizen / patrol / hotline), patrols and their track points

Cases typed in by hotline operators (channel console) are marked hotline; the rest were
citizens' complaints: patrol reports did not exist before.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 12:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source", sa.String(16), nullable=False,
                                      server_default="citizen"))
    op.execute(sa.text("UPDATE cases SET source = 'hotline' WHERE channel = 'console'"))
    op.create_table(
        "patrols",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("worker_id", sa.Integer, sa.ForeignKey("workers.id"), nullable=False,
                  index=True),
        sa.Column("grid_code", sa.String(32), nullable=False),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("ended_at", sa.DateTime, nullable=True),
        sa.Column("distance_m", sa.Float, nullable=False, server_default="0"),
        sa.Column("covered_share", sa.Float, nullable=False, server_default="0"),
        sa.Column("left_grid", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "patrol_points",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("patrol_id", sa.Integer, sa.ForeignKey("patrols.id"), nullable=False,
                  index=True),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("lat", sa.Float, nullable=False),
        sa.Column("lon", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("patrol_points")
    op.drop_table("patrols")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_column("source")
