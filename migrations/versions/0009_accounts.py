"""accounts: the dashboard's own sign-in names and Argon2id password hashes (importer.database.accounts).

name_key is the trimmed, case-folded name: lookups use it and it is unique, so " Ama " and "ama" are one
account. A disabled account keeps its row: runs and workspaces name it.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("name_key", sa.String(255), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("is_admin", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("name_key", name="uq_accounts_name_key"),
    )


def downgrade() -> None:
    op.drop_table("accounts")
