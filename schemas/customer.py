"""The customer record, declared once: FIELDS says, for each field, its label, header synonyms, rules and
stored column. Everything else is derived from it:

- the pandera model CustomerFrame (validation of the normalised frame, `importer.checks.validate`);
- the `customers` table's field columns: length, NULL or NOT NULL (`importer.database.schema`);
- the template's instructions sheet (`importer.output.template`) and the header synonyms (`importer.mapping.columns`).

CustomerFrame is built on first use: importing this module does not import pandera (a second of start-up
that `python -m importer history` and the database code do not need).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

REGIONS: dict[str, str] = {
    "GREATER_ACCRA": "Greater Accra",
    "ASHANTI": "Ashanti",
    "WESTERN": "Western",
    "CENTRAL": "Central",
    "VOLTA": "Volta",
    "EASTERN": "Eastern",
    "NORTHERN": "Northern",
    "UPPER_EAST": "Upper East",
    "UPPER_WEST": "Upper West",
    "BRONG_AHAFO": "Brong Ahafo",
    "WESTERN_NORTH": "Western North",
    "AHAFO": "Ahafo",
    "BONO": "Bono",
    "BONO_EAST": "Bono East",
    "OTI": "Oti",
    "NORTH_EAST": "North East",
    "SAVANNAH": "Savannah",
}
# The first is the default of a blank cell.
USER_TYPES: tuple[str, ...] = ("INDIVIDUAL", "BUSINESS")

SHIPPING_MARK_MIN_LENGTH = 2
# Length has its own check (too_long), so the pattern only enforces characters and the minimum.
SHIPPING_MARK_PATTERN = rf"^[A-Za-z0-9 _-]{{{SHIPPING_MARK_MIN_LENGTH},}}$"
E164_PATTERN = r"^\+[1-9][0-9]{6,14}$"
# The stored list of a customer's other phones or e-mails (", "-separated).
OTHER_CONTACTS_LENGTH = 500


@dataclass(frozen=True)
class FieldSpec:
    """What the importer knows about one field of the record.

    name, label, required (the file must give it), max_length (longer text fails as too_long; also the
    column's length), synonyms (header texts that name it), help (the template's rule; `{min_length}` and
    `{max_length}` are filled in; empty: "At most N characters."), and the stored value's rules:
    nullable (NULL allowed; default: when not required; a field with a default for a blank cell is
    not nullable), column_length (the column's length when there is no max_length: a normalised value's
    own bound), min_length, pattern (pandera str_matches), choices (pandera isin).
    """

    name: str
    label: str
    required: bool
    max_length: int | None
    synonyms: tuple[str, ...] = ()
    help: str = ""
    nullable: bool | None = None
    column_length: int | None = None
    min_length: int = 0
    pattern: str | None = None
    choices: tuple[str, ...] = ()

    @property
    def stored_nullable(self) -> bool:
        """Whether the normalised frame and the table may hold NULL (None) for this field."""
        return (not self.required) if self.nullable is None else self.nullable

    @property
    def stored_length(self) -> int:
        """The length of the field's VARCHAR column."""
        length = self.column_length or self.max_length
        assert length is not None, f"{self.name}: a column needs a length"
        return length

    @property
    def rule(self) -> str:
        """The template's instruction for the field."""
        if self.help:
            return self.help.format(min_length=self.min_length, max_length=self.max_length)
        return ("" if self.required else "Optional. ") + f"At most {self.max_length} characters."


FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec(
        "shipping_mark", "Shipping Mark", True, 100,
        ("mark", "s/mark", "s mark", "shipping marks", "ship mark", "shipmark", "customer mark",
         "marking", "shipping code", "customer code"),
        help="{min_length}-{max_length} letters, digits, spaces, '-' or '_'. "
             "Must be unique (case and spaces ignored).",
        min_length=SHIPPING_MARK_MIN_LENGTH, pattern=SHIPPING_MARK_PATTERN,
    ),
    FieldSpec(
        "first_name", "First Name", True, 50,
        ("given name", "forename", "firstname", "first", "fname", "other names", "christian name"),
    ),
    FieldSpec(
        "last_name", "Last Name", True, 50,
        ("surname", "family name", "lastname", "last", "lname"),
    ),
    FieldSpec(
        "email", "Email", False, 254,
        ("e-mail", "email address", "e-mail address", "mail"),
        help="Optional. A valid address; unique when given.",
    ),
    FieldSpec(
        "phone", "Phone", True, None,
        ("mobile", "tel", "telephone", "phone no", "phone no.", "phone number", "mobile number",
         "mobile no", "cell", "cell phone", "contact", "contact number", "whatsapp", "msisdn"),
        help="A valid number; Ghana is assumed without a country code (024 123 4567). Unique.",
        column_length=20, pattern=E164_PATTERN,
    ),
    FieldSpec(
        "region", "Region", False, None,
        ("state", "province", "area", "location region"),
        help="Optional; blank = Greater Accra. One of: " + ", ".join(REGIONS.values()) + ".",
        nullable=False, column_length=32, choices=tuple(REGIONS),
    ),
    FieldSpec(
        "company_name", "Company Name", False, 100,
        ("company", "business name", "business", "organisation", "organization", "firm"),
    ),
    FieldSpec(
        "nickname", "Nickname", False, 50,
        ("nick name", "alias", "known as", "nick"),
    ),
    FieldSpec(
        "user_type", "User Type", False, None,
        ("type", "customer type", "account type", "category"),
        help=f"Optional; {USER_TYPES[0]} (default) or {' or '.join(USER_TYPES[1:])}.",
        nullable=False, column_length=16, choices=USER_TYPES,
    ),
    # Filled from a cell holding several numbers or addresses ("0277229773 / 0248503716"): the first
    # valid one is the phone (email), the others are kept here, never dropped (importer.checks.normalise.split_phones).
    FieldSpec(
        "other_phones", "Other Phones", False, OTHER_CONTACTS_LENGTH,
        ("other phone", "other numbers", "other phone numbers", "phone 2", "phone2", "second phone",
         "alternative phone", "alternate phone", "alt phone", "mobile 2", "mobile2", "other mobile",
         "other contacts", "tel 2", "telephone 2", "additional phones", "phone number 2", "phone no 2",
         "mobile no 2", "mobile number 2", "contact 2", "contact number 2"),
        help="Optional. More numbers of the customer, separated by commas; a Phone cell holding several "
             "numbers fills it too (the first valid number is the phone). At most {max_length} characters.",
    ),
    FieldSpec(
        "other_emails", "Other Emails", False, OTHER_CONTACTS_LENGTH,
        ("other email", "other e-mails", "other e-mail", "email 2", "email2", "e-mail 2", "second email",
         "alternative email", "alternate email", "alt email", "additional emails", "email address 2"),
        help="Optional. More addresses of the customer, separated by commas; an Email cell holding several "
             "addresses fills it too (the first valid one is the email). At most {max_length} characters.",
    ),
)

FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in FIELDS)
REQUIRED_FIELDS: tuple[str, ...] = tuple(f.name for f in FIELDS if f.required)
SPECS: dict[str, FieldSpec] = {f.name: f for f in FIELDS}
# The template's column order; a header-less legacy file is read in this order.
LEGACY_POSITIONAL_FIELDS: tuple[str, ...] = ("shipping_mark", "first_name", "last_name", "email", "phone")
# Unique in the table (in this order: the order duplicates are looked for and reported).
UNIQUE_FIELDS: tuple[str, ...] = ("shipping_mark", "phone", "email")


def label_of(field: str) -> str:
    """The label people see for a field name (`phone` -> `Phone`)."""
    spec = SPECS.get(field)
    return spec.label if spec else field.replace("_", " ").title()


def _pandera_field(spec: FieldSpec) -> Any:
    """The pandera Field of one spec: its nullability, length, pattern and choices."""
    import pandera.pandas as pa

    checks: dict[str, Any] = {}
    if spec.max_length is not None:
        checks["str_length"] = {"max_value": spec.max_length}
    if spec.pattern is not None:
        checks["str_matches"] = spec.pattern
    if spec.choices:
        checks["isin"] = list(spec.choices)
    return pa.Field(nullable=spec.stored_nullable, **checks)


def _build_customer_frame() -> type:
    import pandera.pandas as pa
    from pandera.typing import Series

    class Config:
        strict = False
        coerce = False

    namespace: dict[str, Any] = {
        "__module__": __name__,
        "__qualname__": "CustomerFrame",
        "__doc__": "The normalised customer frame, as `importer.checks.normalise` leaves it (None = blank or invalid).",
        "__annotations__": {spec.name: Series[str] for spec in FIELDS},
        **{spec.name: _pandera_field(spec) for spec in FIELDS},
        "Config": Config,
    }
    return type("CustomerFrame", (pa.DataFrameModel,), namespace)


_BUILD_LOCK = threading.Lock()


def __getattr__(name: str) -> Any:
    """`CustomerFrame`, the pandera model of FIELDS, built (and pandera imported) on first access."""
    if name == "CustomerFrame":
        with _BUILD_LOCK:
            frame = globals().get("CustomerFrame")
            if frame is None:
                frame = globals()["CustomerFrame"] = _build_customer_frame()
        return frame
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
