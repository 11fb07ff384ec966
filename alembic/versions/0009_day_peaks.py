"""day_peaks: the day's highest equity per New York trading day, for MAX_DRAWDOWN_FROM_PEAK
(a restarted `watch` keeps the peak).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONEY = sa.Numeric(20, 6).with_variant(sa.String(40), "sqlite")  # as in 0001
TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "day_peaks",
        sa.Column("trading_day", sa.Date(), nullable=False),
        sa.Column("peak_equity", MONEY, nullable=False),
        sa.Column("peak_at", TIME, nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("trading_day", name=op.f("pk_day_peaks")),
    )


def downgrade() -> None:
    op.drop_table("day_peaks")
