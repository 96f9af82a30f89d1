"""Alembic environment: runs on the connection importer.database.schema hands over (or DATABASE_URL)."""

from __future__ import annotations

from alembic import context

from importer.database.schema import make_engine, metadata
from importer.settings import Settings

config = context.config
target_metadata = metadata


def run_migrations_online() -> None:
    """Migrate on the given connection; the caller owns its transaction and lock."""
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    # Plain `alembic upgrade head` from a shell: go through the same locked path.
    from importer.database.schema import ensure_schema

    ensure_schema(make_engine(config.get_main_option("sqlalchemy.url") or Settings.from_env().database_url))


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; use `python -m importer init-db`")
run_migrations_online()
