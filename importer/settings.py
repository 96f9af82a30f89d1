"""Frozen settings read from the environment (and, in the dashboard, from st.secrets)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from importer.errors import UsageError

DEFAULT_DATABASE_URL = "sqlite:///customers.db"


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw.replace("_", "").replace(",", ""))
    except ValueError as exc:
        raise UsageError(f"setting {name}={raw!r} is not a whole number") from exc


def _ranges(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """A comma-separated list of national number prefixes ("025, 0590"), digits only."""
    found = tuple(p.strip() for p in env.get(name, "").split(",") if p.strip())
    for prefix in found:
        if not prefix.isdigit() or not prefix.isascii():
            raise UsageError(f"setting {name}={env.get(name)!r}: {prefix!r} is not a number range (digits only, such as 025)")
    return found


@dataclass(frozen=True)
class Settings:
    """Every tunable of the importer, with the contract's defaults."""

    database_url: str = DEFAULT_DATABASE_URL
    default_phone_region: str = "GH"
    # National number ranges accepted as valid beyond the phone library's metadata (PHONE_EXTRA_RANGES=025,0590):
    # ranges a numbering plan opened after the installed phonenumbers release (importer.checks.normalise.phone_rules).
    phone_extra_ranges: tuple[str, ...] = ()
    default_customer_region: str = "GREATER_ACCRA"
    max_rows: int = 100_000
    max_upload_mb: int = 50
    max_inflated_mb: int = 400
    max_inflation_ratio: int = 100
    # Cells a sheet may hold or span (calamine allocates its used range densely), whatever it declares.
    max_cells: int = 10_000_000
    # A CSV line (or quoted record) longer than this, or with more fields, is refused before it is split.
    max_csv_line_kb: int = 1024
    max_columns: int = 1_000
    # Characters one cell of a workbook may hold (Excel's own limit): a longer one is refused while the
    # workbook's XML streams, before a parser allocates it (importer.intake.read_limits).
    max_file_cell_chars: int = 32_767
    batch_size: int = 2_000
    # What one review operation (find and replace, a value conversion) may write, checked before it runs
    # (importer.review.conversions.check_operation): a cell of at most this many characters (twice the longest
    # field, Other Phones' 500), and at most this many MB of text added to the upload (blank -> 2,000
    # characters on 100,000 rows would add 191 MB and took the server past 1.8 GB).
    max_cell_chars: int = 1_000
    max_operation_mb: int = 20
    app_password: str = ""
    # MB of the dashboard process that heavy steps may take at once (importer.server.governor): 250 on a 512 MB
    # host runs one 100,000-row step at a time (an idle server is ~210 MB, a step adds 150-200 MB).
    memory_budget_mb: int = 250
    # The password gate's throttle (importer.server.throttle): wrong passwords in a row that lock a client out,
    # for how long, and wrong passwords from all clients within that time that slow every sign-in.
    login_max_failures: int = 10
    login_lockout_minutes: int = 15
    login_server_max_failures: int = 50
    # Proxies in front of the dashboard that append to X-Forwarded-For (importer.server.front_door): 0 locally,
    # 1 behind Render's. The client's address is the entry that many hops from the right, never the leftmost.
    trusted_proxy_hops: int = 0
    # Days an untouched workspace (an upload and its review operations, importer.workspace.store) is kept.
    workspace_days: int = 14
    # Seconds between the dashboard's live redraws of what other sessions change (the sidebar's customer count
    # and running imports, the Import page's dry-run verdict, Upload's workspace list); at least 1.
    live_refresh_seconds: int = 2
    # Files one browser session may have uploaded and held at once, and their MB in all
    # (importer.server.front_door): an upload past either is refused before its body is read.
    max_uploads_per_session: int = 4
    max_session_upload_mb: int = 100

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from environment variables; unset ones keep their defaults."""
        env = os.environ if env is None else env
        return cls(
            database_url=env.get("DATABASE_URL", "").strip() or DEFAULT_DATABASE_URL,
            default_phone_region=(env.get("DEFAULT_PHONE_REGION", "").strip() or "GH").upper(),
            phone_extra_ranges=_ranges(env, "PHONE_EXTRA_RANGES"),
            default_customer_region=(
                env.get("DEFAULT_CUSTOMER_REGION", "").strip() or "GREATER_ACCRA"
            ).upper(),
            max_rows=_int(env, "MAX_ROWS", 100_000),
            max_upload_mb=_int(env, "MAX_UPLOAD_MB", 50),
            max_inflated_mb=_int(env, "MAX_INFLATED_MB", 400),
            max_inflation_ratio=_int(env, "MAX_INFLATION_RATIO", 100),
            max_cells=_int(env, "MAX_CELLS", 10_000_000),
            max_csv_line_kb=_int(env, "MAX_CSV_LINE_KB", 1024),
            max_columns=_int(env, "MAX_COLUMNS", 1_000),
            max_file_cell_chars=_int(env, "MAX_FILE_CELL_CHARS", 32_767),
            batch_size=_int(env, "BATCH_SIZE", 2_000),
            max_cell_chars=_int(env, "MAX_CELL_CHARS", 1_000),
            max_operation_mb=_int(env, "MAX_OPERATION_MB", 20),
            app_password=env.get("APP_PASSWORD", ""),
            memory_budget_mb=_int(env, "MEMORY_BUDGET_MB", 250),
            login_max_failures=_int(env, "LOGIN_MAX_FAILURES", 10),
            login_lockout_minutes=_int(env, "LOGIN_LOCKOUT_MINUTES", 15),
            login_server_max_failures=_int(env, "LOGIN_SERVER_MAX_FAILURES", 50),
            trusted_proxy_hops=_int(env, "TRUSTED_PROXY_HOPS", 0),
            workspace_days=_int(env, "WORKSPACE_DAYS", 14),
            live_refresh_seconds=max(1, _int(env, "LIVE_REFRESH_SECONDS", 2)),
            max_uploads_per_session=_int(env, "MAX_UPLOADS_PER_SESSION", 4),
            max_session_upload_mb=_int(env, "MAX_SESSION_UPLOAD_MB", 100),
        )

    @property
    def phone_rules(self) -> str:
        """The phone normalisers' region: the default phone region and the extra ranges (normalise.phone_rules)."""
        from importer.checks.normalise import phone_rules

        return phone_rules(self.default_phone_region, self.phone_extra_ranges)

    def with_(self, **changes: Any) -> Settings:
        """A copy with some settings changed: `settings.with_(max_rows=10)`."""
        return replace(self, **changes)
