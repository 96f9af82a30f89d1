"""Columns to fields: header detection and mapping, remembered profiles, the file's own columns."""
