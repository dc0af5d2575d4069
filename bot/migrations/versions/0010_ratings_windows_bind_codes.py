"""case_ratings, contact_windows, bind_codes: what must survive a restart

- case_ratings keeps every rating (chat and 回访) with its time, note and closure number;
  the cases' existing ratings are copied in. cases.rating stays the latest rating.
- contact_windows: when each person last wrote, for WeChat's 48-hour window (was in Redis
  only: every restart of a server on the embedded store closed every window).
- bind_codes: one-time `/bind CODE` codes (were in Redis only: the default set-up had none).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "case_ratings",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id"), nullable=False, index=True),
        sa.Column("closure", sa.Integer, nullable=False),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("score", sa.Integer, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
    )
    op.execute(sa.text(
        "INSERT INTO case_ratings (case_id, closure, at, score, note, source) "
        "SELECT id, reopen_count, COALESCE(closed_at, updated_at), rating, '', 'chat' "
        "FROM cases WHERE rating IS NOT NULL"))
    op.create_table(
        "contact_windows",
        sa.Column("channel", sa.String(32), primary_key=True),
        sa.Column("external_id", sa.String(128), primary_key=True),
        sa.Column("last_inbound_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "bind_codes",
        sa.Column("code", sa.String(16), primary_key=True),
        sa.Column("scope", sa.String(140), nullable=False),
        sa.Column("expires_at", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("bind_codes")
    op.drop_table("contact_windows")
    op.drop_table("case_ratings")
