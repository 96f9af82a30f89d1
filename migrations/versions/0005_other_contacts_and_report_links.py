"""Several phones and e-mails per customer (customers.other_phones, other_emails), a run that fixes the
report of an earlier run (import_runs.fixes_run_id), and the branch's own columns of each failed row
(import_failures.other_columns), so a report read back from the database keeps them in their places.

Plain ADD/DROP COLUMN on both databases, never a batch rebuild: on SQLite rebuilding customers or
import_runs drops the old table, and with foreign keys on that cascades into customer_changes (the
audit trail) and import_failures. So on SQLite the new customer columns come last in the stored
CREATE TABLE, after source_row_number.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_COLUMNS = (
    ("customers", "other_phones", sa.String(500)),
    ("customers", "other_emails", sa.String(500)),
    ("import_runs", "fixes_run_id", sa.Integer()),
    ("import_failures", "other_columns", sa.JSON()),
)


def upgrade() -> None:
    for table, name, kind in _COLUMNS:
        op.add_column(table, sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    for table, name, _kind in reversed(_COLUMNS):
        op.drop_column(table, name)
