"""The customers in the database: search, filter by region and run, page, a customer's history, export."""

from __future__ import annotations

import streamlit as st

from ui import auth

current = auth.guard()
st.title("Customers")
