"""The upload template: headers in the legacy column order, example rows, instructions."""

from __future__ import annotations

import io

import openpyxl

from importer.checks.validate import check_frame
from importer.output.template import EXAMPLE_ROWS, template_xlsx
from importer.settings import Settings
from schemas.customer import FIELDS, LEGACY_POSITIONAL_FIELDS, REGIONS
from tests.support import frame


def test_template_headers_examples_and_instructions() -> None:
    book = openpyxl.load_workbook(io.BytesIO(template_xlsx()))
    assert book.sheetnames == ["Customers", "Instructions"]
    rows = list(book["Customers"].iter_rows(values_only=True))
    assert list(rows[0]) == [f.label for f in FIELDS]
    assert [f.name for f in FIELDS][:5] == list(LEGACY_POSITIONAL_FIELDS)
    assert len(rows) == 1 + len(EXAMPLE_ROWS)
    notes = [r[0] for r in book["Instructions"].iter_rows(min_row=2, values_only=True) if r and r[0]]
    assert all(f.label in notes for f in FIELDS)


def test_template_examples_are_valid_customers() -> None:
    mapped = frame(*({f.name: (v or "") for f, v in zip(FIELDS, row, strict=True)} for row in EXAMPLE_ROWS))
    assert check_frame(mapped, Settings()).errors == {}


def test_instructions_give_each_fields_rule_from_the_declaration() -> None:
    book = openpyxl.load_workbook(io.BytesIO(template_xlsx()))
    rules = {r[0]: (r[1], r[2]) for r in book["Instructions"].iter_rows(min_row=2, values_only=True) if r and r[1]}
    assert rules == {f.label: ("yes" if f.required else "no", f.rule) for f in FIELDS}
    assert rules["Shipping Mark"][1].startswith("2-100 letters, digits, spaces, '-' or '_'.")
    assert rules["First Name"][1] == "At most 50 characters."
    assert rules["Company Name"][1] == "Optional. At most 100 characters."
    assert all(label in rules["Region"][1] for label in REGIONS.values())
    assert rules["User Type"][1] == "Optional; INDIVIDUAL (default) or BUSINESS."
    # The phone column is text, so a typed leading zero stays.
    sheet = book["Customers"]
    phone = [c.column_letter for c in sheet[1] if c.value == "Phone"][0]
    assert sheet.column_dimensions[phone].number_format == "@"
