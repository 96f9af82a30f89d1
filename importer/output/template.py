"""The upload template workbook: headers in the legacy column order, example rows, an instructions sheet
(each field's rule from schemas.customer.FIELDS)."""

from __future__ import annotations

import io

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter

from schemas.customer import FIELD_NAMES, FIELDS

EXAMPLE_ROWS = (
    ("PM4 KOFI", "Kofi", "Mensah", "kofi.mensah@example.com", "024 123 4567", "Ashanti", "", "Kofi M",
     "INDIVIDUAL", "", ""),
    ("PM10 ABENA", "Abena", "Owusu", "", "+233 20 765 4321", "Greater Accra", "Abena Fabrics Ltd", "",
     "BUSINESS", "055 123 4567, 027 722 9773", "sales@abenafabrics.example.com"),
)


def template_xlsx() -> bytes:
    """The template workbook as bytes."""
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Customers"
    sheet.append([f.label for f in FIELDS])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for example in EXAMPLE_ROWS:
        sheet.append(list(example))
    for number, spec in enumerate(FIELDS, start=1):
        sheet.column_dimensions[get_column_letter(number)].width = max(14, len(spec.label) + 4)
    sheet.freeze_panes = "A2"
    # Phones typed into a text column keep their leading zero.
    for name in ("phone", "other_phones"):
        sheet.column_dimensions[get_column_letter(FIELD_NAMES.index(name) + 1)].number_format = "@"
    notes = workbook.create_sheet("Instructions")
    notes.append(["Column", "Required", "Rule"])
    for cell in notes[1]:
        cell.font = Font(bold=True)
    for spec in FIELDS:
        notes.append([spec.label, "yes" if spec.required else "no", spec.rule])
    notes.append([])
    notes.append(["Delete the example rows before uploading. One row per customer; blank rows are skipped."])
    notes.append(["A Phone (or Email) cell may hold several numbers (addresses), separated by commas, "
                  "semicolons, slashes, 'or' or one per line: the first valid one is the phone (email), "
                  "the others go to Other Phones (Other Emails)."])
    notes.column_dimensions["A"].width = 16
    notes.column_dimensions["C"].width = 100
    for row in notes.iter_rows(min_row=2):
        row[-1].alignment = Alignment(wrap_text=True)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
