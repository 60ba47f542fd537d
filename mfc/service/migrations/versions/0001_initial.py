"""The first schema: runs, attempts, artifacts, cards, deployments, tokens (mfc.service.schema).

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

NAME = 255


def _task_columns() -> list[sa.Column]:
    return [sa.Column("run", sa.Integer(), nullable=False), sa.Column("step", sa.String(NAME), nullable=False),
            sa.Column("task_id", sa.String(NAME), nullable=False), sa.Column("attempt", sa.Integer(), nullable=False)]


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("flow", sa.String(NAME), nullable=False),
        sa.Column("run_id", sa.String(NAME), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("user", sa.String(NAME), nullable=False),
        sa.Column("info", sa.JSON(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("trigger", sa.JSON(), nullable=True),
        sa.Column("final", sa.JSON(), nullable=True),
        sa.Column("final_status", sa.String(32), nullable=True),
        sa.Column("finished_at", sa.Float(), nullable=True),
        sa.Column("lease", sa.JSON(), nullable=True),
        sa.Column("lease_at", sa.Float(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("flow", "run_id", name="uq_runs_flow_run"),
    )
    op.create_index("ix_runs_flow_created", "runs", ["flow", "created_at"])
    op.create_index("ix_runs_version", "runs", ["version"])
    op.create_table(
        "attempts",
        *_task_columns(),
        sa.Column("started_at", sa.Float(), nullable=True),
        sa.Column("finished_at", sa.Float(), nullable=True),
        sa.Column("ending", sa.String(32), nullable=True),
        sa.Column("final", sa.Boolean(), nullable=False),
        sa.Column("foreach_index", sa.Integer(), nullable=True),
        sa.Column("foreach_item", sa.Text(), nullable=True),
        sa.Column("record", sa.JSON(), nullable=True),
        sa.Column("logs", sa.JSON(), nullable=True),
        sa.Column("host", sa.String(NAME), nullable=True),
        sa.PrimaryKeyConstraint("run", "step", "task_id", "attempt", name="pk_attempts"),
        sa.ForeignKeyConstraint(["run"], ["runs.id"], name="fk_attempts_run", ondelete="CASCADE"),
    )
    op.create_table(
        "artifacts",
        *_task_columns(),
        sa.Column("name", sa.String(NAME), nullable=False),
        sa.Column("sha", sa.String(128), nullable=False),
        sa.Column("type", sa.String(NAME), nullable=True),
        sa.Column("size", sa.Integer(), nullable=True),
        sa.Column("preview", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("run", "step", "task_id", "attempt", "name", name="pk_artifacts"),
        sa.ForeignKeyConstraint(["run"], ["runs.id"], name="fk_artifacts_run", ondelete="CASCADE"),
    )
    op.create_table(
        "cards",
        *_task_columns(),
        sa.Column("card_id", sa.String(NAME), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("location", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("run", "step", "task_id", "attempt", "card_id", name="pk_cards"),
        sa.ForeignKeyConstraint(["run"], ["runs.id"], name="fk_cards_run", ondelete="CASCADE"),
    )
    op.create_table(
        "deployments",
        sa.Column("name", sa.String(NAME), nullable=False),
        sa.Column("flow", sa.String(NAME), nullable=False),
        sa.Column("state_machine_arn", sa.Text(), nullable=False),
        sa.Column("region", sa.String(64), nullable=True),
        sa.Column("schedule", sa.JSON(), nullable=True),
        sa.Column("triggers", sa.JSON(), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("info", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_index("ix_deployments_flow", "deployments", ["flow"])
    op.create_table(
        "tokens",
        sa.Column("token_id", sa.String(32), nullable=False),
        sa.Column("hash", sa.String(128), nullable=False),
        sa.Column("read_only", sa.Boolean(), nullable=False),
        sa.Column("label", sa.String(NAME), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=True),
        sa.Column("revoked_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("token_id"),
    )


def downgrade() -> None:
    for table in ("tokens", "deployments", "cards", "artifacts", "attempts", "runs"):
        op.drop_table(table)
