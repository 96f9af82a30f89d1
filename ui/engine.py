"""Settings (environment plus st.secrets) and the one cached database engine of the dashboard."""

from __future__ import annotations

import os
from collections.abc import Mapping

import sqlalchemy as sa
import streamlit as st

from importer.database.schema import ensure_schema, make_engine
from importer.settings import Settings

# Settings a deployment may put in .streamlit/secrets.toml instead of the environment.
SECRET_SETTINGS = (
    "DATABASE_URL", "APP_PASSWORD", "DEFAULT_PHONE_REGION", "DEFAULT_CUSTOMER_REGION", "MAX_ROWS",
    "MAX_UPLOAD_MB", "BATCH_SIZE", "MEMORY_BUDGET_MB", "LOGIN_MAX_FAILURES", "LOGIN_LOCKOUT_MINUTES", "LOGIN_SERVER_MAX_FAILURES",
)


def secrets() -> Mapping[str, object]:
    """st.secrets as a plain mapping; empty when there is no secrets.toml."""
    try:
        return {key: st.secrets[key] for key in st.secrets}
    except (FileNotFoundError, KeyError, st.errors.StreamlitSecretNotFoundError):
        return {}


def merged_env(environ: Mapping[str, str], secret_values: Mapping[str, object]) -> dict[str, str]:
    """The environment with the settings found in secrets laid over it (secrets win)."""
    env = dict(environ)
    for name in SECRET_SETTINGS:
        value = secret_values.get(name)
        if value is not None and not isinstance(value, Mapping):
            env[name] = str(value)
    return env


def settings() -> Settings:
    """Settings of this request: environment variables, overridden by st.secrets."""
    return Settings.from_env(merged_env(os.environ, secrets()))


@st.cache_resource(show_spinner="Connecting to the database...")
def _engine_for(url: str) -> sa.Engine:
    # A DatabaseError propagates and is not cached, so the next run tries again.
    engine = make_engine(url)
    ensure_schema(engine)
    return engine


def engine() -> sa.Engine:
    """The database engine for the configured URL, schema created or upgraded once per process."""
    return _engine_for(settings().database_url)
