"""Scratch databases for benchmarks: a fresh SQLite file or PostgreSQL database per case, all dropped at the end."""

from __future__ import annotations

import uuid
from pathlib import Path

import sqlalchemy as sa


class Databases:
    """Fresh databases under one admin connection (PostgreSQL) or folder (SQLite); drop() removes them."""

    def __init__(self, admin_url: str, folder: Path) -> None:
        self.admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
        self.folder, self.made = folder, []

    def fresh(self, kind: str) -> str:
        if kind == "sqlite":
            return f"sqlite:///{self.folder / f'{uuid.uuid4().hex[:8]}.db'}"
        name = f"bench_{uuid.uuid4().hex[:10]}"
        with self.admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        self.made.append(name)
        return self.admin.url.set(database=name).render_as_string(hide_password=False)

    def drop(self) -> None:
        with self.admin.connect() as conn:
            for name in self.made:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.admin.dispose()
