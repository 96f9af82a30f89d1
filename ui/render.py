"""Renderers and small pure helpers for the pages: error tables, charts, metrics, run history."""

from __future__ import annotations

import functools
import hashlib
import itertools
import re
from collections.abc import Hashable, Iterable, Mapping
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import streamlit as st
from streamlit.elements.lib.column_types import ColumnConfig

from importer.checks.validate import Checked
from importer.database.ledger import RunRecord
from importer.outcomes.error_table import ErrorTable
from importer.outcomes.row_errors import DUPLICATE_CODES, ErrorCode, RowError, error_text
from importer.outcomes.run_result import RunResult
from importer.review.session import counts_of
from schemas.customer import FIELD_NAMES, REGIONS, UNIQUE_FIELDS, label_of

ROW = "Row"
ERRORS = "Errors"
EXCLUDE_COLUMN = "Exclude"
GRID_LIMIT = 5_000
# Words, not colours: the status is readable without colour or icon fonts.
STATUS_TEXT = {
    "completed": "Completed",
    "interrupted": "Interrupted (can resume)",
    "running": "Running",
    "undone": "Undone",
}


# Text from the file (its name, sheet names, headers, refusal messages quoting them) goes into Markdown
# elements and widget labels: escaped, it shows as typed instead of as links, images, emphasis or HTML.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]<>#|~$&])")
_AUTOLINK = re.compile(r"(?i)(://|\bwww\.)")


def md_escape(text: object) -> str:
    r"""`text` as Markdown that renders literally, on one line: `**x** <b>` -> `\*\*x\*\* \<b\>`.

    Backslash escapes (CommonMark) for emphasis, code, links and images, HTML, tables, strikethrough,
    math and Streamlit's `:color[...]`; `://` and `www.` are broken up so no bare URL becomes a link.
    """
    out = _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(str(text).splitlines()))
    return _AUTOLINK.sub(lambda m: "\\://" if m.group(1) == "://" else m.group(1)[:3] + "\\.", out)


def show_error(error: BaseException, *, escape: bool = True) -> None:
    """An engine error on the page: its sentence for the analyst, and, when the engine gave one, its detail for an
    administrator (a setting's name, a command) in a "Details" expander under it (ImporterError.detail)."""
    st.error(md_escape(error) if escape else str(error), icon=":material/block:")
    detail = getattr(error, "detail", None)
    if detail:
        with st.expander("Details"):
            st.code(str(detail), language=None, wrap_lines=True)


ANY_REASON = "any"
# Rows that clash with another row or a stored customer: the Duplicates metric and the side-by-side view.
CLASH_CODES = (*DUPLICATE_CODES, ErrorCode.CONFLICT)


# Widgets keep their format_func (and a download button its data callable) in the session's widget
# metadata, for as long as the session lives, also after the user moved to another page. A lambda or
# function defined in a page script carries that page's globals (the upload, its frames, the uploaded
# bytes) along with it, so pages pass these module-level functions or functools.partial instead.


Choice = TypeVar("Choice", bound=Hashable)


def pick_widget_key(key: str, labels: Iterable[str]) -> str:
    """The widget key of `pick(..., key)` while it shows these labels: `key` and a digest of them."""
    digest = hashlib.blake2b("\n".join(labels).encode(), digest_size=6).hexdigest()
    return f"{key}_{digest}"


def pick(label: str, choices: Mapping[Choice, str], key: str, **kwargs: Any) -> Choice:
    """A select box over `choices` (each value and its label now) that cannot show one choice and act on another.

    A select box whose labels carry counts or row numbers ("Region: ... 2,152 rows", "Row 6: ...") changes
    its labels with every action; under one widget the browser kept the old label on screen while the page
    acted on the value now in its place ("Region ... 2,152 rows" beside "Exclude all 139 rows failing on
    phone"). Here the widget is keyed by its labels (pick_widget_key), so new labels are a new widget, drawn
    from this run's choices. The pick is remembered by value under `key`, kept while it is still a choice
    (else the first choice). `kwargs` go to st.selectbox (help, ...).
    """
    values = list(choices)
    labels = [choices[v] for v in values]
    remembered = st.session_state.get(key)
    index = next((i for i, v in enumerate(values) if v == remembered), 0)
    # labels.__getitem__ holds only the labels (see the note above region_name on what a format_func keeps).
    chosen = st.selectbox(label, range(len(values)), index=index, key=pick_widget_key(key, labels),
                          format_func=labels.__getitem__, **kwargs)
    value = values[chosen if chosen is not None else index]
    st.session_state[key] = value
    return value


def region_name(code: str) -> str:
    return REGIONS[code]


def run_label(run: RunRecord) -> str:
    """`#7 · customers.xlsx · 2026-03-01 09:30 · Completed`."""
    return f"#{run.id} · {run.file_name} · {run.started_at:%Y-%m-%d %H:%M} · {STATUS_TEXT.get(run.status, run.status)}"


def reason(code: str) -> str:
    """`Not a valid phone number`: the reason in words (its code is for the report's machines, not the page)."""
    if code == ANY_REASON:
        return "Any reason"
    return ErrorCode(code).meaning


def failure_counts(errors: ErrorTable) -> pd.DataFrame:
    """Rows failing per (field, code), for the chart: columns field, code, rows, what."""
    counts = errors.by_field_and_code()
    counts["what"] = [f"{label_of(f)}: {ErrorCode(c).meaning.lower()}"
                      for f, c in zip(counts["field"], counts["code"], strict=True)]
    return counts.sort_values(["rows", "what"], ascending=[False, True], ignore_index=True)


def failure_chart(errors: ErrorTable) -> dict[str, Any] | None:
    """Horizontal bars, one per field and reason, each labelled in words and with its count: a Vega-Lite
    spec with its data (st.vega_lite_chart draws it without Altair, whose import alone is 26 MB of the
    server's memory)."""
    counts = failure_counts(errors)
    if counts.empty:
        return None
    encoding = {
        "y": {"field": "what", "type": "nominal", "sort": "-x", "title": None, "axis": {"labelLimit": 320}},
        # Whole rows only: without these, a count of 1 or 2 gets ticks at 0.1, 0.2...
        "x": {"field": "rows", "type": "quantitative", "title": "Failing rows",
              "axis": {"format": ",d", "tickMinStep": 1}},
        "tooltip": [{"field": "what", "type": "nominal", "title": "Field and reason"},
                    {"field": "rows", "type": "quantitative", "title": "Rows", "format": ","}],
    }
    return {
        "data": {"values": counts.to_dict("records")},
        "height": 30 * len(counts),
        "encoding": encoding,
        "layer": [{"mark": "bar"},
                  {"mark": {"type": "text", "align": "left", "dx": 4},
                   "encoding": {"text": {"field": "rows", "type": "quantitative", "format": ","}}}],
    }


def show_failure_chart(errors: ErrorTable) -> None:
    """The failure chart, tall enough for one readable bar per field and reason."""
    chart = failure_chart(errors)
    if chart is not None:
        # Streamlit's "content" height ignores the spec's height; give it explicitly (+ the axis).
        st.vega_lite_chart(chart, width="stretch", height=int(chart["height"]) + 60)


def metric_counts(checked: Checked, errors: ErrorTable) -> dict[str, int]:
    """Rows, valid, failing and duplicate rows (in the file or already in the database)."""
    duplicates = len(functools.reduce(np.union1d, (errors.rows_with(code) for code in CLASH_CODES)))
    return {"rows": checked.total, "valid": checked.total - len(errors), "failing": len(errors),
            "duplicates": duplicates}


def show_metrics(counts: Mapping[str, int]) -> None:
    rows, valid, failing, duplicates = (counts[k] for k in ("rows", "valid", "failing", "duplicates"))
    cols = st.columns(4)
    cols[0].metric("Rows", f"{rows:,}", border=True)
    cols[1].metric("Valid", f"{valid:,}", border=True)
    cols[2].metric("Failing", f"{failing:,}", border=True)
    cols[3].metric("Duplicates", f"{duplicates:,}", border=True,
                   help="Rows that repeat an earlier row of the file or a customer already in the database")


def show_database_metrics(counts: Mapping[str, int]) -> None:
    """The valid rows against the database: new, unchanged, changed (accepted of them), conflict."""
    cols = st.columns(4)
    cols[0].metric("New", f"{counts['new']:,}", border=True, help="Valid rows whose keys match no customer")
    cols[1].metric("Unchanged", f"{counts['unchanged']:,}", border=True,
                   help="Rows already stored exactly as they are: counted as unchanged, not as failures")
    cols[2].metric("Changed", f"{counts['changed']:,}", border=True,
                   delta=f"{counts['accepted']:,} accepted" if counts["changed"] else None, delta_color="off",
                   delta_arrow="off",
                   help="Rows that match one customer and change some of its values")
    cols[3].metric("Conflict", f"{counts['conflict']:,}", border=True,
                   help="Rows whose keys belong to two or more different customers: they fail")


def failing_rows(
    checked: Checked, errors: ErrorTable, code: str | None = None, limit: int = GRID_LIMIT,
) -> tuple[pd.DataFrame, int]:
    """The grid: failing rows (optionally only those with one code) as typed, with Errors and Exclude
    columns; at most `limit` rows. Returns the frame and how many rows matched in all."""
    rows = errors.rows_with(code)
    shown = [int(row) for row in rows[:limit] if row in checked.original.index]
    frame = checked.original.loc[shown, list(FIELD_NAMES)].astype(str).reset_index(drop=True)
    frame.insert(0, ROW, pd.array(shown, dtype="int64"))
    frame.insert(1, EXCLUDE_COLUMN, False)
    frame.insert(2, ERRORS, [error_text(errors[row]) for row in shown])
    return frame, len(rows)


def grid_column_config() -> dict[str, ColumnConfig]:
    config: dict[str, ColumnConfig] = {
        ROW: st.column_config.NumberColumn("Row", help="Row number in the file (as Excel shows it)",
                                           disabled=True, format="%d", pinned=True),
        ERRORS: st.column_config.TextColumn("Errors", help="What is wrong and how to fix it", disabled=True,
                                            width="large"),
        EXCLUDE_COLUMN: st.column_config.CheckboxColumn(
            "Exclude", help="Tick, then press 'Exclude ticked rows': the row is neither imported nor reported"),
    }
    for field in FIELD_NAMES:
        config[field] = st.column_config.TextColumn(label_of(field))
    return config


def edited_rows(shown: pd.DataFrame, edited: pd.DataFrame) -> pd.DataFrame:
    """Rows whose field text the user changed in the grid: FIELD_NAMES columns, index = source row."""
    fields = list(FIELD_NAMES)
    before = shown[fields].fillna("").astype(str)
    after = edited[fields].fillna("").astype(str)
    changed = (before != after).any(axis=1)
    out = after[changed].copy()
    out.index = pd.Index(shown.loc[changed, ROW].astype(int).tolist(), name="source_row_number")
    return out


def ticked_rows(edited: pd.DataFrame) -> list[int]:
    """Source rows whose Exclude box is ticked."""
    ticked = edited[EXCLUDE_COLUMN].fillna(False).astype(bool)
    return [int(row) for row in edited.loc[ticked, ROW]]


def duplicate_rows(errors: ErrorTable, limit: int) -> list[tuple[int, RowError]]:
    """(row, error) for the first `limit` duplicate errors, in row order."""
    rows = functools.reduce(np.union1d, (errors.rows_with(code) for code in CLASH_CODES))
    found = ((int(row), e) for row in rows for e in errors[int(row)] if e.code in CLASH_CODES)
    return list(itertools.islice(found, limit))


def _folded(value: object) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return " ".join(str(value).split()).casefold()


def side_by_side(left: Mapping[str, object], right: Mapping[str, object], left_title: str, right_title: str,
                 field: str, compared: Mapping[str, object] | None = None) -> pd.DataFrame:
    """Two records as columns, one line per field, each field marked truthfully in words: "same" or
    "differs", and a key (mark, phone, email) that holds the same value named as "the key that matched".
    `compared`: the right record's values to compare with (its normalised values, when `right` is the row
    as typed and `left` a stored customer); `field`, the clashing field, is marked only where it is same."""
    other = right if compared is None else compared
    same = {f: _folded(left.get(f)) == _folded(other.get(f)) for f in FIELD_NAMES}
    return pd.DataFrame(
        {
            "Field": [label_of(f) + ("  ⟵ the key that matched" if same[f] and f in (*UNIQUE_FIELDS, field) and
                                     _folded(left.get(f)) else "") for f in FIELD_NAMES],
            left_title: ["" if left.get(f) is None else str(left.get(f)) for f in FIELD_NAMES],
            right_title: ["" if right.get(f) is None else str(right.get(f)) for f in FIELD_NAMES],
            "Compared": ["same" if same[f] else "differs" for f in FIELD_NAMES],
        }
    )


def result_metrics(result: RunResult) -> None:
    """Attempted, created, failed; updated and unchanged too when a re-import had any, so the boxes add up."""
    count_metrics(counts_of(result), dry=result.dry_run)


def count_metrics(counts: dict[str, int], *, dry: bool = True) -> None:
    """The boxes of a run's counts (created, updated, unchanged, failed; attempted is their sum)."""
    created, updated = counts.get("created", 0), counts.get("updated", 0)
    unchanged, failed = counts.get("unchanged", 0), counts.get("failed", 0)
    boxes = [("Rows attempted", created + updated + unchanged + failed), ("Would create" if dry else "Created", created)]
    if updated:
        boxes.append(("Would update" if dry else "Updated", updated))
    if unchanged:
        boxes.append(("Unchanged", unchanged))
    boxes.append(("Would fail" if dry else "Failed", failed))
    for col, (label, count) in zip(st.columns(len(boxes)), boxes, strict=True):
        col.metric(label, f"{count:,}", border=True)


def reasons_table(result: RunResult) -> pd.DataFrame:
    """Failed rows per reason code, in words."""
    counts = result.failure_codes
    return pd.DataFrame({"Reason": [reason(c) for c in counts], "Rows": [f"{n:,}" for n in counts.values()]})


def runs_frame(runs: Iterable[RunRecord]) -> pd.DataFrame:
    """The history table: when, who, file, rows, created, updated, unchanged, failed, duration, status, and
    the run whose failure report the file was ("Fixes")."""
    records = [
        {
            "Run": run.id,
            "Started (UTC)": run.started_at.replace(tzinfo=None) if run.started_at else None,
            "By": run.by or "—",  # "ama", or "kofi (command line)"
            "File": run.file_name + (f" [{run.sheet}]" if run.sheet else ""),
            "Rows": run.total_attempted,
            "Created": run.total_created,
            "Updated": run.total_updated,
            "Unchanged": run.total_unchanged,
            "Failed": run.total_failed,
            "Duration (s)": round(run.duration_seconds, 1) if run.duration_seconds is not None else None,
            "Status": STATUS_TEXT.get(run.status, run.status),
            "Fixes": f"fixes for run #{run.fixes_run_id}" if run.fixes_run_id is not None else "",
            "Undone by": run.undone_by_label or "",
        }
        for run in runs
    ]
    return pd.DataFrame(records)


RUN_OUTCOMES = ("Created", "Updated", "Unchanged", "Failed")  # the History chart's stack, bottom up


def runs_chart_data(runs: Iterable[RunRecord]) -> pd.DataFrame:
    """One line per run and outcome (created, updated, unchanged, failed), oldest run first: what the History
    chart draws. Columns run, order, outcome, stack (the outcome's place in the stack), rows, file."""
    records: list[dict[str, object]] = []
    for run in sorted(runs, key=lambda r: r.id):
        label = f"#{run.id} {run.started_at:%d %b %H:%M}"
        counts = (run.total_created, run.total_updated, run.total_unchanged, run.total_failed)
        records.extend({"run": label, "order": run.id, "outcome": outcome, "stack": place, "rows": int(count or 0),
                        "file": run.file_name}
                       for place, (outcome, count) in enumerate(zip(RUN_OUTCOMES, counts, strict=True)))
    return pd.DataFrame(records, columns=["run", "order", "outcome", "stack", "rows", "file"])


def runs_chart(runs: Iterable[RunRecord]) -> dict[str, Any] | None:
    """Created, updated, unchanged and failed rows per run, oldest first, stacked: each run's bar is the rows it
    attempted. The outcome is in the legend, the shade and the tooltips. A Vega-Lite spec with its data."""
    data = runs_chart_data(runs)
    if data.empty:
        return None
    bar_width = max(4, min(48, 800 // data["order"].nunique()))
    return {
        "data": {"values": data.to_dict("records")},
        "mark": {"type": "bar", "size": bar_width},
        "height": 240,
        "encoding": {
            "x": {"field": "run", "type": "nominal", "title": "Run (started, UTC)",
                  "sort": {"field": "order"}, "axis": {"labelAngle": 0}},
            "y": {"field": "rows", "type": "quantitative", "title": "Rows", "stack": True,
                  "axis": {"format": ",d", "tickMinStep": 1}},
            # Created green, updated blue, unchanged grey, failed red: the colours say good, changed, same, bad.
            "color": {"field": "outcome", "type": "nominal", "title": "Outcome", "legend": {"orient": "top"},
                      "scale": {"domain": list(RUN_OUTCOMES), "range": ["#2e7d32", "#1565c0", "#9e9e9e", "#c62828"]}},
            "order": {"field": "stack", "type": "quantitative"},
            "tooltip": [{"field": "run", "type": "nominal", "title": "Run"},
                        {"field": "file", "type": "nominal", "title": "File"},
                        {"field": "outcome", "type": "nominal", "title": "Outcome"},
                        {"field": "rows", "type": "quantitative", "title": "Rows", "format": ","}],
        },
    }


def progress_text(rows_done: int, total: int, rows_per_second: float, seconds_left: float | None) -> str:
    """`12,000 of 100,000 rows · 4,500 rows/s · about 17 s left`."""
    text = f"{rows_done:,} of {total:,} rows · {rows_per_second:,.0f} rows/s"
    if seconds_left is not None and rows_done < total:
        text += f" · about {seconds_left:,.0f} s left"
    return text
