"""Who ran an import, and an index to find a file's earlier runs by sha256.

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("import_runs") as batch:
        batch.add_column(sa.Column("user_name", sa.String(255)))
    op.create_index("ix_import_runs_sha256", "import_runs", ["sha256"])


def downgrade() -> None:
    op.drop_index("ix_import_runs_sha256", table_name="import_runs")
    with op.batch_alter_table("import_runs") as batch:
        batch.drop_column("user_name")
