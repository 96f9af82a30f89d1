"""First schema: customers, import_runs, import_failures.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "import_runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("file_name", sa.String(255), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("sheet", sa.String(255)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("total_attempted", sa.Integer, nullable=False, server_default="0"),
        sa.Column("total_created", sa.Integer, nullable=False, server_default="0"),
        sa.Column("total_failed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("rows_done", sa.Integer, nullable=False, server_default="0"),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True)),
        sa.Column("owner", sa.String(255)),
        sa.Column("settings", sa.JSON),
        sa.Column("undone_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint(
            "status IN ('running', 'completed', 'interrupted', 'undone')", name="ck_import_runs_status"
        ),
    )
    op.create_table(
        "customers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("shipping_mark", sa.String(100), nullable=False),
        sa.Column("first_name", sa.String(50), nullable=False),
        sa.Column("last_name", sa.String(50), nullable=False),
        sa.Column("email", sa.String(254)),
        sa.Column("phone", sa.String(20), nullable=False),
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("company_name", sa.String(100)),
        sa.Column("nickname", sa.String(50)),
        sa.Column("user_type", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("import_run_id", sa.Integer, sa.ForeignKey("import_runs.id"), nullable=True),
        sa.Column("source_row_number", sa.Integer, nullable=True),
        sa.UniqueConstraint("shipping_mark", name="uq_customers_shipping_mark"),
        sa.UniqueConstraint("phone", name="uq_customers_phone"),
        sa.UniqueConstraint("email", name="uq_customers_email"),
        sa.UniqueConstraint("import_run_id", "source_row_number", name="uq_customers_run_row"),
        sa.CheckConstraint("user_type IN ('INDIVIDUAL', 'BUSINESS')", name="ck_customers_user_type"),
        sa.CheckConstraint("length(shipping_mark) >= 2", name="ck_customers_shipping_mark_len"),
    )
    op.create_table(
        "import_failures",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "run_id", sa.Integer, sa.ForeignKey("import_runs.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("source_row_number", sa.Integer, nullable=False),
        sa.Column("errors", sa.JSON, nullable=False),
        sa.Column("customer_data", sa.JSON, nullable=False),
        sa.UniqueConstraint("run_id", "source_row_number", name="uq_import_failures_run_row"),
    )


def downgrade() -> None:
    op.drop_table("import_failures")
    op.drop_table("customers")
    op.drop_table("import_runs")
