"""Who did what: how a run was started, who undid it, who made each workspace operation, who discarded.

- import_runs.via: how the run was started ("dashboard" or "command line"); user_name says who (the
  signed-in account, or the OS user for the command line). History shows "kofi (command line)".
- import_runs.undone_by / undone_via: the account (or OS user) that undid the run, and how.
- workspace_operations.actor: the account that made the operation (its owner, or an admin).
- workspaces.discarded_by: who discarded a workspace kept for an interrupted run's resume.

All nullable: rows from before this revision recorded none of it.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("import_runs") as batch:
        batch.add_column(sa.Column("via", sa.String(32), nullable=True))
        batch.add_column(sa.Column("undone_by", sa.String(255), nullable=True))
        batch.add_column(sa.Column("undone_via", sa.String(32), nullable=True))
    with op.batch_alter_table("workspace_operations") as batch:
        batch.add_column(sa.Column("actor", sa.String(255), nullable=True))
    with op.batch_alter_table("workspaces") as batch:
        batch.add_column(sa.Column("discarded_by", sa.String(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workspaces") as batch:
        batch.drop_column("discarded_by")
    with op.batch_alter_table("workspace_operations") as batch:
        batch.drop_column("actor")
    with op.batch_alter_table("import_runs") as batch:
        batch.drop_column("undone_via")
        batch.drop_column("undone_by")
        batch.drop_column("via")
