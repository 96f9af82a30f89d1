"""Indexes for the Customers page: a trigram index over the searched text (PostgreSQL, when pg_trgm can be
had), an index on region and one on (import_run_id, id) for a run's customers in id order.

The search looks for a fragment anywhere in one text per customer: its mark, first and last name, phone
and email, lower case (CREATE_SEARCH_INDEX below). On PostgreSQL a GIN index of that text's trigrams
(pg_trgm) answers `LIKE '%fragment%'` without reading every customer (bench/bench_customers.py). pg_trgm
is a trusted extension (PostgreSQL 13+: a database owner may create it); where it cannot be created, the
migration goes on without the index and searching still works, by reading the table. SQLite has no such
index: a search there reads the table.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

import logging

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# The expression must stay the one importer.database.customers.search_text() builds, or the index goes unused.
CREATE_SEARCH_INDEX = (
    "CREATE INDEX ix_customers_search_trgm ON customers USING gin ("
    "lower(shipping_mark || ' ' || first_name || ' ' || last_name || ' ' || phone || ' ' || coalesce(email, ''))"
    " gin_trgm_ops)"
)
_LOG = logging.getLogger(__name__)


def _trigrams_available(bind: sa.Connection) -> bool:
    """pg_trgm installed, or created now; False (and a warning) when this role may not create it."""
    if bind.execute(sa.text("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")).first():
        return True
    try:
        with bind.begin_nested():  # a savepoint: a refusal must not abort the migration's transaction
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    except sa.exc.DBAPIError as exc:
        _LOG.warning("pg_trgm could not be created (%s): customer search reads the whole table",
                     str(exc.orig).splitlines()[0])
        return False
    return True


def upgrade() -> None:
    op.create_index("ix_customers_region", "customers", ["region"])
    op.create_index("ix_customers_run_id", "customers", ["import_run_id", "id"])
    bind = op.get_bind()
    if bind.dialect.name == "postgresql" and _trigrams_available(bind):
        op.execute(CREATE_SEARCH_INDEX)


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_customers_search_trgm")
    op.drop_index("ix_customers_run_id", table_name="customers")
    op.drop_index("ix_customers_region", table_name="customers")
