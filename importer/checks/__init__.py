"""Checking the mapped rows: normalising each field, validating, duplicates inside the file."""
