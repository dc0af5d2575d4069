"""patrol_plans (each grid's duty list) and the planned places a patrol passed

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 14:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "patrol_plans",
        sa.Column("grid_code", sa.String(32), primary_key=True),
        sa.Column("every", sa.String(16), nullable=False),
        sa.Column("places", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    with op.batch_alter_table("patrols", schema=None) as batch_op:
        batch_op.add_column(sa.Column("places", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("patrols", schema=None) as batch_op:
        batch_op.drop_column("places")
    op.drop_table("patrol_plans")
