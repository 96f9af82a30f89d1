"""workspaces.snapshot: the file as first read and checked, kept beside the file itself.

A workspace's replay read the file again and validated every row before applying its operations: 4-6 s
for 100,000 rows (bench/bench_workspace.py). The snapshot (importer.workspace.snapshot.snapshot_bytes: the text and
normalised frames as Parquet, the errors as arrays, the reading's notes as JSON) lets a refresh, an undo or
a resume start from the checked rows and validate only what the operations change. Nullable: a workspace
without one (made before this revision, or one whose snapshot cannot be read) is replayed from its file.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("workspaces") as batch:
        batch.add_column(sa.Column("snapshot", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workspaces") as batch:
        batch.drop_column("snapshot")
