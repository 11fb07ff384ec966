"""Alerts per channel: each alert gets one outbox row per channel (e-mail, webhook), delivered
and retried on its own; the structured facts a webhook carries.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0006"
# 0005 is being written beside this one: whoever merges second re-chains to it.
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        # every alert queued so far was an e-mail
        batch.add_column(sa.Column("channel", sa.String(16), nullable=False,
                                   server_default="e-mail"))
        batch.add_column(sa.Column("facts", sa.JSON(), nullable=True))
        batch.create_index("ix_alerts_channel", ["channel"])


def downgrade() -> None:
    # before 0006 every row was an e-mail: other channels' rows would be sent as mail
    op.execute("DELETE FROM alerts WHERE channel <> 'e-mail'")
    with op.batch_alter_table("alerts") as batch:
        batch.drop_index("ix_alerts_channel")
        batch.drop_column("facts")
        batch.drop_column("channel")
