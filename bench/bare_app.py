"""The baseline issue 20's one-flow target is measured against: a bare Streamlit app holding the same rows.

It reads the uploaded workbook with pandas (calamine, every cell as text, header on the third row as the bench
workbook has it), keeps the frame in the session and shows it in a grid; nothing else. bench/bench_512mb.py's
`bare_100k` case runs it with plain `streamlit run` under the same cgroup and with the dashboard's allocator
settings (importer.server.serve.SERVER_ENV), and uploads the same 100,000-row file, so the dashboard's peak can
be read as a ratio to it, measured on the same machine in the same run.
"""

from __future__ import annotations

import io

import pandas as pd
import streamlit as st

file = st.file_uploader("Customer file (.xlsx, .xls or .csv)", type=["xlsx"])
if file is not None:
    if st.session_state.get("name") != file.name:
        st.session_state["frame"] = pd.read_excel(io.BytesIO(file.getvalue()), engine="calamine", header=2, dtype=str)
        st.session_state["name"] = file.name
    frame = st.session_state["frame"]
    st.write(f"{len(frame):,} rows read")
    st.dataframe(frame)
