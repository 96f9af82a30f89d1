"""Streamlit helpers of the dashboard: cached engine, session keys, login gate, renderers."""
