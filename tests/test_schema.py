"""schemas.customer: one declaration (FIELDS) drives validation, the table and the template."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from importer.checks.validate import check_frame
from importer.outcomes.row_errors import ErrorCode
from schemas.customer import FIELDS, SPECS, CustomerFrame
from tests.support import SETTINGS, customer, frame

ROOT = Path(__file__).resolve().parent.parent


def test_the_pandera_model_is_the_declaration() -> None:
    schema = CustomerFrame.to_schema()
    assert list(schema.columns) == [f.name for f in FIELDS]
    assert {name: column.nullable for name, column in schema.columns.items()} == {
        f.name: f.stored_nullable for f in FIELDS}
    lengths = {name: [c.statistics["max_value"] for c in column.checks if c.name == "str_length"]
               for name, column in schema.columns.items()}
    assert lengths == {f.name: [f.max_length] if f.max_length else [] for f in FIELDS}
    assert schema.columns["region"].checks[0].statistics["allowed_values"] == list(SPECS["region"].choices)
    assert not schema.strict and not schema.coerce
    assert CustomerFrame is __import__("schemas.customer").customer.CustomerFrame  # built once


# An email over 254 characters is refused by the address check itself (invalid_email).
@pytest.mark.parametrize("field", [f.name for f in FIELDS if f.max_length and f.name != "email"])
def test_each_declared_length_is_the_limit_validation_applies(field: str) -> None:
    limit = SPECS[field].max_length
    value = "A" * limit
    longer = value + "A"
    checked = check_frame(frame(customer(1, **{field: value}), customer(2, **{field: longer})), SETTINGS)
    assert 2 not in checked.errors
    assert [(e.field, e.code) for e in checked.errors[3]] == [(field, ErrorCode.TOO_LONG)]
    assert f"at most {limit}" in checked.errors[3][0].message


def test_importing_the_declaration_does_not_import_pandera() -> None:
    """importer.database.schema builds its table from FIELDS; the CLI's history and undo never load pandera."""
    code = "import sys, importer.database.schema, importer.database.ledger; print('pandera' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_other_phones_and_emails_are_declared_once_and_followed_everywhere() -> None:
    """The two optional fields of issue 11 reach the model, the table, the template and the mapper from FIELDS."""
    import io

    import openpyxl

    from importer.database.schema import customers
    from importer.mapping.columns import match_header
    from importer.output.template import template_xlsx

    for name, label in (("other_phones", "Other Phones"), ("other_emails", "Other Emails")):
        spec = SPECS[name]
        assert (spec.label, spec.required, spec.stored_nullable) == (label, False, True)
        assert name in CustomerFrame.to_schema().columns
        assert customers.c[name].nullable and customers.c[name].type.length == spec.max_length
        assert match_header(label) == name
    assert [match_header(h) for h in ("Phone 2", "Alt. Phone", "Phone Number 2", "Email 2", "Other E-mails")] == [
        "other_phones", "other_phones", "other_phones", "other_emails", "other_emails"]
    assert [match_header(h) for h in ("Phone", "Mobile No.", "Email", "Other Names")] == [
        "phone", "phone", "email", "first_name"]
    header = next(openpyxl.load_workbook(io.BytesIO(template_xlsx()))["Customers"].iter_rows(values_only=True))
    assert header[-2:] == ("Other Phones", "Other Emails")
