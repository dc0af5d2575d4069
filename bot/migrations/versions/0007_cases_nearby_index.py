"""index for the duplicate lookup (same item, nearby latitude)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22 06:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_cases_nearby", "cases", ["item_code", "lat"])


def downgrade() -> None:
    op.drop_index("ix_cases_nearby", table_name="cases")
