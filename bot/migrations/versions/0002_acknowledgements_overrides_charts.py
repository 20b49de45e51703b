"""Acknowledged alerts, admins' alert-rule overrides, and charts in the digest's thread.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alertruleoverride",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("metric_id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("set_by", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("set_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["metric_id"],
            ["metric.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("metric_id", "kind"),
    )
    with op.batch_alter_table("alertruleoverride", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alertruleoverride_metric_id"), ["metric_id"], unique=False)

    op.create_table(
        "alertacknowledgement",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("comment", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["alertevent.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("alertacknowledgement", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alertacknowledgement_event_id"), ["event_id"], unique=False)

    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("chart", sqlmodel.sql.sqltypes.AutoString(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("chart")

    with op.batch_alter_table("alertacknowledgement", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alertacknowledgement_event_id"))

    op.drop_table("alertacknowledgement")
    with op.batch_alter_table("alertruleoverride", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alertruleoverride_metric_id"))

    op.drop_table("alertruleoverride")
