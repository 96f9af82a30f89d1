"""Names vulture (./test.sh's dead-code check) cannot see used: read by a library, not by our code.

Each line names one, with who reads it. Used only by tests or bench counts as used: they are passed to
vulture too.
"""
# ruff: noqa
_ = object()
_.isolation_level  # importer/database/schema.py: set on sqlite3 connections, read by the driver
_.font  # importer/output/template.py: openpyxl cell styles, read when the workbook is saved
_.alignment  # importer/output/template.py: openpyxl cell styles
__getattr__  # schemas/customer.py: the module's lazy attributes (PEP 562), called by Python
