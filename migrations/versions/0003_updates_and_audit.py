"""Re-imports update customers: per-run update/unchanged counts, the customers' audit trail
(customer_changes: before- and after-image of each update) and the ledger of rows a run found unchanged.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("import_runs") as batch:
        batch.add_column(sa.Column("total_updated", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("total_unchanged", sa.Integer, nullable=False, server_default="0"))
    op.create_table(
        "customer_changes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("customer_id", sa.Integer, sa.ForeignKey("customers.id", ondelete="CASCADE"), nullable=False),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("import_runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("source_row_number", sa.Integer, nullable=False),
        sa.Column("before", sa.JSON, nullable=False),
        sa.Column("after", sa.JSON, nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("run_id", "source_row_number", name="uq_customer_changes_run_row"),
    )
    op.create_index("ix_customer_changes_customer_id", "customer_changes", ["customer_id"])
    op.create_table(
        "import_unchanged",
        sa.Column("run_id", sa.Integer, sa.ForeignKey("import_runs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("source_row_number", sa.Integer, primary_key=True),
        sa.Column("customer_id", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("import_unchanged")
    op.drop_index("ix_customer_changes_customer_id", table_name="customer_changes")
    op.drop_table("customer_changes")
    with op.batch_alter_table("import_runs") as batch:
        batch.drop_column("total_unchanged")
        batch.drop_column("total_updated")
