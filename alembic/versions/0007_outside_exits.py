"""Shares of a tracked position sold (or bought back) at Alpaca outside tradectl: how many, and
the realized P&L of those fills, so a row's P&L is Alpaca's share for share (issue 23).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0007"
# Other branches may add their own 0007 beside this one: whoever merges second re-chains to it.
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONEY = sa.Numeric(20, 6).with_variant(sa.String(40), "sqlite")  # as in 0001


def upgrade() -> None:
    with op.batch_alter_table("positions") as batch:
        batch.add_column(sa.Column("outside_qty", MONEY, nullable=True))
        batch.add_column(sa.Column("outside_pl", MONEY, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("positions") as batch:
        batch.drop_column("outside_pl")
        batch.drop_column("outside_qty")
