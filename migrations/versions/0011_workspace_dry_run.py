"""workspaces.dry_run: the dry run the review session last ran, so every tab and server knows it.

A dry run's verdict (the workspace version and the import choices it ran with, the database state it saw,
its counts) was kept in the page's session only: another tab, a refresh or a second server had to run it
again, and the rule "dry run first, and not a stale one" lived in the page. With it stored beside the
workspace, importer.review.session answers "may this be imported now, and if not why" for every face.
Nullable: no dry run yet.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("workspaces") as batch:
        batch.add_column(sa.Column("dry_run", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workspaces") as batch:
        batch.drop_column("dry_run")
