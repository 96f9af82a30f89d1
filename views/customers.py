"""The customers in the database: search by mark, name, phone or email; filter by region and by run; pages
read from the database one at a time; a customer's record, the run that created it and each update with its
diff; the filtered set exported as CSV or Excel, built when its button is clicked."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, cast

import pandas as pd
import streamlit as st

from importer.database.customers import SEARCH_COUNT_CAP, customer_detail, search_customers
from importer.database.ledger import list_runs
from importer.errors import DatabaseError
from importer.output import customer_export as export
from importer.output.customer_export import MIME, export_file_name
from importer.output.downloads import export_file
from schemas.customer import FIELDS, REGIONS
from ui import auth, keys, render, state
from ui.downloads import offer_file
from ui.engine import engine

PAGE_SIZES = (25, 50, 100, 200)
# Columns of the table, in order: (column of importer.database.customers.CUSTOMER_COLUMNS, heading).
TABLE = (("id", "ID"), ("shipping_mark", "Shipping Mark"), ("first_name", "First Name"), ("last_name", "Last Name"),
         ("phone", "Phone"), ("email", "Email"), ("region", "Region"), ("import_run_id", "Run"),
         ("created_at", "Created (UTC)"))
LABELS = {f.name: f.label for f in FIELDS}

current = auth.guard()
st.title("Customers")
if auth.gate_kind(current) == "none" and not auth.is_sqlite(current):
    st.warning("This dashboard reads a shared database but has no login configured, so its customers are not "
               "shown. Ask whoever runs the dashboard to set up sign-in.", icon=":material/lock:")
    st.stop()

try:
    runs = list_runs(engine())
except DatabaseError as exc:
    st.error(f"{exc}", icon=":material/block:")
    st.stop()

# Select boxes keep their format_func in the session: a dict's bound .get holds only the labels.
search_col, region_col, run_col, size_col = st.columns([3, 2, 3, 1])
text = search_col.text_input("Search", key=keys.CUSTOMERS_SEARCH, placeholder="Mark, name, phone or email", max_chars=200,
                             help="Finds the text anywhere in the shipping mark, first and last name, phone or "
                                  "email, in any case. A phone number can be typed as on a form: 024 123 4567.")
region_labels: dict[str | None, str] = {None: "All regions"}
region_labels.update(REGIONS)
region: str | None = region_col.selectbox("Region", list(region_labels), key=keys.CUSTOMERS_REGION,
                                          format_func=region_labels.__getitem__)
run_labels: dict[int | None, str] = {None: "All runs", **{r.id: render.run_label(r) for r in runs}}
run_id: int | None = run_col.selectbox("Created or updated by", list(run_labels), key=keys.CUSTOMERS_RUN,
                                       format_func=run_labels.__getitem__)
size = size_col.selectbox("Per page", PAGE_SIZES, index=1, key=keys.CUSTOMERS_PAGE_SIZE)
text = (text or "").strip()

# Keyset paging: the session keeps the id each page starts after (first page: None), for these filters.
query = (text, region, run_id, size)
if state.get(keys.CUSTOMERS_QUERY) != query:
    st.session_state[keys.CUSTOMERS_QUERY] = query
    st.session_state[keys.CUSTOMERS_CURSOR] = [None]
cursor: list[int | None] = st.session_state[keys.CUSTOMERS_CURSOR]
try:
    page = search_customers(engine(), text, region=region, run_id=run_id, limit=size, after_id=cursor[-1],
                            count_cap=SEARCH_COUNT_CAP if text else None)
except DatabaseError as exc:
    st.error(f"{exc}", icon=":material/block:")
    st.stop()

first_row = (len(cursor) - 1) * size + 1
last_row = first_row + len(page.rows) - 1
# A capped count is a floor: "of more than 10,000", or past it on a later page, "of at least 10,050".
of = (f"at least {last_row:,}" if last_row > page.total else f"more than {page.total:,}") if page.capped \
    else f"{page.total:,}"
if not page.rows and len(cursor) == 1:
    st.info("No customer matches." if text or region or run_id is not None else "No customers yet.",
            icon=":material/info:")
    if not runs:
        st.page_link("views/upload.py", label="Upload a file", icon=":material/upload_file:")
    st.stop()
if page.rows:
    st.caption(f"Rows {first_row:,}-{last_row:,} of {of} customer{'' if page.total == 1 else 's'}")
else:
    st.caption(f"No more customers after row {first_row - 1:,}.")

frame = pd.DataFrame([{heading: row[column] for column, heading in TABLE} for row in page.rows],
                     columns=[heading for _, heading in TABLE])
frame["Region"] = frame["Region"].map(REGIONS).fillna(frame["Region"])
frame["Email"] = frame["Email"].fillna("")
frame["Run"] = ["" if pd.isna(run) else f"#{int(run)}" for run in frame["Run"]]
st.dataframe(frame, hide_index=True, width="stretch", key=keys.CUSTOMERS_TABLE, column_config={
    "ID": st.column_config.NumberColumn(format="%d", width="small"),
    "Run": st.column_config.TextColumn(width="small", help="The import that created the customer"),
    "Created (UTC)": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
})

more = len(page.rows) == size and (page.capped or last_row < page.total)
# The buttons change the cursor list itself (bound methods: nothing of this script is kept with them).
with st.container(horizontal=True):
    st.button("Previous", key=keys.CUSTOMERS_PREVIOUS, icon=":material/chevron_left:", disabled=len(cursor) == 1,
              on_click=cast(Callable[..., None], cursor.pop))
    st.button("Next", key=keys.CUSTOMERS_NEXT, icon=":material/chevron_right:", disabled=not more,
              on_click=cursor.append, args=(page.last_id,))
    st.button("First page", key=keys.CUSTOMERS_FIRST, icon=":material/first_page:", disabled=len(cursor) == 1,
              on_click=cursor.__delitem__, args=(slice(1, None),))

# --- one customer --------------------------------------------------------------------------------------
if page.rows:
    st.subheader("One customer")
    names = {row["id"]: f"{row['shipping_mark']} · {row['first_name']} {row['last_name']} (ID {row['id']})"
             for row in page.rows}
    chosen = st.selectbox("Customer on this page", list(names), index=None, key=keys.CUSTOMERS_DETAIL,
                          format_func=names.__getitem__, placeholder="Choose one to see its record and history")
    if chosen is not None:
        try:
            detail = customer_detail(engine(), chosen)
        except DatabaseError as exc:
            st.error(f"{exc}", icon=":material/block:")
            st.stop()
        if detail is None:
            st.warning(f"Customer {chosen} is no longer in the database (an undo may have removed it).",
                       icon=":material/warning:")
        else:
            record = detail["customer"]
            values = []
            for field in FIELDS:
                value = record.get(field.name)
                if field.name == "region" and value:
                    value = REGIONS.get(value, value)
                values.append({"Field": field.label, "Value": "" if value is None else str(value)})
            left, right = st.columns([1, 1])
            left.dataframe(pd.DataFrame(values), hide_index=True, width="stretch", height=35 * (len(values) + 1) + 3,
                           column_config={"Field": st.column_config.TextColumn(width="small")})
            created = detail["created_by"]
            with right:
                if created is not None:
                    row_text = f", row {record['source_row_number']:,}" if record["source_row_number"] else ""
                    st.markdown(f":material/add_circle: Created by run **#{created['id']}** "
                                f"({render.md_escape(created['file_name'])}{row_text}) on "
                                f"{created['started_at']:%Y-%m-%d %H:%M} UTC.")
                else:
                    st.markdown(":material/add_circle: Not created by an import that is still on record.")
                updates = detail["changes"]
                if updates:
                    st.markdown(f":material/edit: Updated by {len(updates)} import{'' if len(updates) == 1 else 's'}:")
                    st.markdown("\n".join(
                        f"- run **#{u['run_id']}** ({render.md_escape(u['file_name'])}, row "
                        f"{u['source_row_number']:,}) on {u['changed_at']:%Y-%m-%d %H:%M} UTC"
                        + (", since undone" if u["run_status"] == "undone" else "") for u in updates))
                else:
                    st.caption("No import has changed this customer since.")
                st.page_link("views/history.py", label="See the runs in History", icon=":material/history:")
            changes = [
                {"When (UTC)": u["changed_at"], "Run": f"#{u['run_id']}", "Field": LABELS.get(name, name),
                 "Before": "" if old is None else str(old), "After": "" if new is None else str(new)}
                for u in updates for name, (old, new) in u["changes"].items()
            ]
            if changes:
                st.dataframe(pd.DataFrame(changes), hide_index=True, width="stretch", column_config={
                    "When (UTC)": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm")})

# --- export --------------------------------------------------------------------------------------------
# The file is built on disk and sent from there (ui.downloads); a big CSV still goes zipped, and Excel has a limit
# (importer.output.customer_export.download_formats). A text search's count stopped at SEARCH_COUNT_CAP, so it is counted
# on, up to that limit, once per set of filters.
st.subheader("Export")
shown = "every customer" if not (text or region or run_id is not None) else "the customers these filters select"
matching, more_than = page.total, page.capped
if page.capped:
    counted = state.get(keys.CUSTOMERS_EXPORT)
    if counted is None or counted[0] != query[:3]:
        try:
            probe = search_customers(engine(), text, region=region, run_id=run_id, limit=1,
                                     count_cap=export.XLSX_DOWNLOAD_LIMIT)
        except DatabaseError as exc:
            st.error(f"{exc}", icon=":material/block:")
            st.stop()
        counted = st.session_state[keys.CUSTOMERS_EXPORT] = (query[:3], probe.total, probe.capped)
    matching, more_than = counted[1], counted[2]
csv_format, excel = export.download_formats(matching, more_than)
notes = [f"Downloads {shown}, in the order of their ID. The file is built when you click, in one pass over the "
         "database; its columns are the template's, so it can be uploaded again."]
if csv_format == "zip":
    notes.append(f"More than {export.ZIP_CSV_PAST:,} customers: the CSV comes zipped, a fifth of its size.")
if not excel:
    notes.append(f"Excel takes up to {export.XLSX_DOWNLOAD_LIMIT:,} customers at a time here: narrow the filters, "
                 "or use CSV.")
st.caption(" ".join(notes))
# Excel runs a cell that starts with = + - @ as a formula: "for Excel" writes such a cell with an apostrophe
# in front, "for other systems" writes every value as stored (the Excel file needs neither: its cells are text).
csv_for = st.radio("CSV for", list(export.CSV_FLAVOURS), format_func=export.CSV_FLAVOURS.__getitem__,
                   horizontal=True, key="customers_csv_for",
                   help="For Excel (the default): a value that starts with = + - or @ (a phone +233...) gets an "
                        "apostrophe, so Excel shows it instead of running it as a formula. For other systems: "
                        "every value exactly as stored, for a program that reads the CSV as data.")
left, right = st.columns(2)
filters: dict[str, Any] = {"text": text or None, "region": region, "run_id": run_id}
for column, fmt, label, key in ((left, csv_format, "Export as CSV" + (" (zipped)" if csv_format == "zip" else ""),
                                 keys.CUSTOMERS_CSV),
                                (right, "xlsx", "Export as Excel", keys.CUSTOMERS_XLSX)):
    offer_file(column, label, partial(export_file, engine(), fmt, **filters, csv_for=csv_for),
               file_name=export_file_name(fmt, **filters), mime=MIME[fmt], key=key, width="stretch",
               disabled=fmt == "xlsx" and not excel)
