"""Protection of held shares: the working stop and take-profit, the restore of a gap, when a
position became unprotected; when tradectl's own close at market was sent.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIME = sa.DateTime(timezone=True)
ORDER_ID = sa.String(64)
COLUMNS = (
    ("exit_sent_at", TIME),
    ("stop_order_id", ORDER_ID),
    ("target_order_id", ORDER_ID),
    ("restore_client_order_id", ORDER_ID),
    ("restore_order_id", ORDER_ID),
    ("restore_sent_at", TIME),
    ("unprotected_since", TIME),
    ("protection_error", sa.Text()),
)


def upgrade() -> None:
    with op.batch_alter_table("positions") as batch:
        for name, kind in COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("positions") as batch:
        for name, _ in reversed(COLUMNS):
            batch.drop_column(name)
