"""import_runs.workspace_seq: the last operation of its workspace a run imports.

A run started from a workspace recorded the workspace (0004) but not how far its operation log was, so a
resume replayed whatever the workspace held by then, and an import of the raw file adopted the run. With the
seq a resume replays exactly the state the run began with, a change made after the run started is known to
be outside it (the workspace is kept after the import), and an import that is not of that workspace can
tell the run is not its own. Nullable: runs not from a workspace, and runs from before this revision.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("import_runs") as batch:
        batch.add_column(sa.Column("workspace_seq", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("import_runs") as batch:
        batch.drop_column("workspace_seq")
