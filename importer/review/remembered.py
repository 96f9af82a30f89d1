"""Value-conversion decisions remembered per source, and offered again for its next file (issue 22).

A source is a file layout: its header signature (importer.mapping.profiles.header_signature), the key mapping
profiles are saved under. October's decisions for a branch ("China": left as it is, not a region; "Accra Rd,
Kumasi" -> ASHANTI) are kept with that layout, and November's file with the same headers gets them as its
suggestions, saying where they came from. A decision is a value and its target, or None for a value the
analyst chose to leave as it is (a guess she cleared).

They are kept in the mapping_profiles row saved by signature alone (name ""), under the key "conversions" of
its mapping JSON, so no table is added: `{"fields": [...], "conversions": {field: {value: target or null}}}`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import sqlalchemy as sa

from importer.database.ledger import now
from importer.database.schema import db_errors, mapping_profiles, reading
from importer.mapping.profiles import header_signature

KEY = "conversions"
Remembered = dict[str, dict[str, str | None]]  # field -> {value as typed (folded): target, or None: leave it}


def _fold(value: object) -> str:
    return " ".join(str(value).split()).casefold()


def _row(conn: sa.Connection, signature: str) -> Any:
    return conn.execute(sa.select(mapping_profiles).where(mapping_profiles.c.signature == signature,
                                                          mapping_profiles.c.name == "")).first()


def remembered_conversions(engine: sa.Engine, headers: Sequence[object]) -> Remembered:
    """The conversion decisions remembered for files with these headers (empty when there are none, or the
    database has no profiles table yet)."""
    with reading(engine) as conn:
        if not sa.inspect(conn).has_table("mapping_profiles"):
            return {}
        row = _row(conn, header_signature(headers))
    if row is None:
        return {}
    found = dict(row.mapping or {}).get(KEY) or {}
    return {str(f): {str(v): None if t is None else str(t) for v, t in dict(values).items()}
            for f, values in dict(found).items()}


def remember_conversions(engine: sa.Engine, headers: Sequence[object], fields: Sequence[str | None], field: str,
                         decisions: Mapping[str, str | None], *, file_name: str | None = None,
                         user: str | None = None) -> None:
    """Keep these decisions ({value: target or None}) for `field` of files with these headers, over earlier
    ones for the same values. `fields`: the file's mapping, saved with them when the layout has no saved
    mapping yet (it is the mapping the file was read with, so it changes nothing the next time)."""
    if not decisions:
        return
    signature = header_signature(headers)
    with db_errors(engine), engine.begin() as conn:
        row = _row(conn, signature)
        if row is None:
            conn.execute(sa.insert(mapping_profiles).values(
                signature=signature, name="", headers=[str(h) for h in headers],
                mapping={"fields": list(fields), KEY: {field: {_fold(v): t for v, t in decisions.items()}}},
                file_name=(file_name or "")[:255] or None, saved_by=(user or "")[:255] or None, saved_at=now()))
            return
        mapping = dict(row.mapping or {})
        kept = {str(f): dict(values) for f, values in dict(mapping.get(KEY) or {}).items()}
        kept.setdefault(field, {}).update({_fold(v): t for v, t in decisions.items()})
        conn.execute(sa.update(mapping_profiles).where(mapping_profiles.c.id == row.id)
                     .values(mapping={**mapping, KEY: kept}))


def with_remembered(table: pd.DataFrame, field: str, remembered: Remembered) -> pd.DataFrame:
    """failing_values' table with the remembered decisions of `field` as its suggestions: a value decided
    before gets that target (or none, when it was left as it is), and why says it was decided for this
    source before."""
    decided = remembered.get(field) or {}
    if not decided or table.empty:
        return table
    out = table.copy()
    for i, value in enumerate(out["value"].astype(str).tolist()):
        key = _fold(value)
        if key not in decided:
            continue
        target = decided[key]
        out.iloc[i, out.columns.get_loc("suggestion")] = target
        out.iloc[i, out.columns.get_loc("why")] = (
            f"your decision for this source's earlier file: {target}" if target is not None
            else "your decision for this source's earlier file: leave it as it is")
    return out


def decisions_of_grid(table: pd.DataFrame, edited: pd.DataFrame, target: str) -> dict[str, str | None]:
    """What the analyst decided in the conversion grid: each value with a target, and each value offered a
    suggestion or asked about (why not empty) that she left without one."""
    out: dict[str, str | None] = {}
    offered = dict(zip(table["value"].astype(str), table["why"].fillna("").astype(str), strict=True))
    for value, chosen in zip(edited["value"].astype(str), edited[target], strict=True):
        if chosen is not None and not pd.isna(chosen) and str(chosen).strip():
            out[value] = str(chosen)
        elif offered.get(value):
            out[value] = None
    return out


__all__ = ["KEY", "Remembered", "decisions_of_grid", "remember_conversions", "remembered_conversions",
           "with_remembered"]
