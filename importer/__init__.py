"""Customer import engine: read, map, clean, validate, dedupe, load, report. No Streamlit here."""
