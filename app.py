"""The dashboard's frame: page config, login gate, navigation and the sidebar's database status.

Run it with `streamlit run app.py` (or ./run.sh). The pages are in views/, the engine in importer/.
(Not pages/: Streamlit treats a pages/ folder as the old file-based navigation and can run a page's file
without this script, so without the login gate, the sidebar and the page config.)
"""

from __future__ import annotations

import streamlit as st

from importer.database.schema import describe_for_people, describe_url
from importer.server.memory import release_free_memory, tune_allocators_for_a_server
from ui import auth, workspace
from ui import jobs as background
from ui.engine import settings
from ui.heavy import watch_session
from ui.render import md_escape

tune_allocators_for_a_server()  # once per process: many sessions share one 512 MB server
st.set_page_config(page_title="Customer import", page_icon=":material/upload_file:", layout="wide")

current = settings()
is_open = auth.is_open(current)
watch_session()  # a tab closed for server.disconnectedSessionTTL seconds is closed and its memory freed

PAGES = [
    st.Page("views/upload.py", title="1. Upload", icon=":material/upload_file:", url_path="upload", default=True),
    st.Page("views/review.py", title="2. Review and fix", icon=":material/rule:", url_path="review"),
    st.Page("views/load.py", title="3. Import", icon=":material/database_upload:", url_path="import"),
    st.Page("views/history.py", title="History", icon=":material/history:", url_path="history"),
    st.Page("views/customers.py", title="Customers", icon=":material/groups:", url_path="customers"),
]
# The same pages either way, so a link to /history shows the login, then History.
page = st.navigation(PAGES, position="sidebar" if is_open else "hidden")
if not is_open:
    auth.login_page()
    st.stop()

with st.sidebar:
    st.caption("Writes to")
    st.markdown(f"**{describe_for_people(current.database_url)}**")
    with st.expander("Details"):  # for an administrator: where exactly (never a password)
        st.caption(md_escape(describe_url(current.database_url)))
    # The customers in the database and every import running now (any tab or instance), with Cancel: a small
    # part that redraws itself every few seconds, so an idle page keeps up with other sessions.
    background.show_progress()
    st.caption(f"Signed in as **{md_escape(auth.user_name(current))}** ({auth.gate_note(current)})")
    auth.logout(current)

try:
    workspace.restore(page.url_path)  # a refresh (a new session) reopens the workspace its address names
    workspace.apply_pending_edits()  # cells typed just before a filter or page change: saved before the page
    page.run()
finally:
    # A rerun may have replaced 100,000-row frames: hand freed heap back so the next step starts low.
    release_free_memory()
