"""The customer record: field metadata (labels, synonyms, lengths) and the pandera model, in one place."""

from __future__ import annotations

from dataclasses import dataclass

import pandera.pandas as pa
from pandera.typing import Series

# Length has its own check (too_long), so the pattern only enforces characters and the minimum of 2.
SHIPPING_MARK_PATTERN = r"^[A-Za-z0-9 _-]{2,}$"
E164_PATTERN = r"^\+[1-9][0-9]{6,14}$"


@dataclass(frozen=True)
class FieldSpec:
    """What the importer knows about one field of the record."""

    name: str
    label: str
    required: bool
    max_length: int | None
    synonyms: tuple[str, ...] = ()


FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec(
        "shipping_mark", "Shipping Mark", True, 100,
        ("mark", "s/mark", "s mark", "shipping marks", "ship mark", "shipmark", "customer mark",
         "marking", "shipping code", "customer code"),
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
    ),
    FieldSpec(
        "phone", "Phone", True, None,
        ("mobile", "tel", "telephone", "phone no", "phone no.", "phone number", "mobile number",
         "mobile no", "cell", "cell phone", "contact", "contact number", "whatsapp", "msisdn"),
    ),
    FieldSpec(
        "region", "Region", False, None,
        ("state", "province", "area", "location region"),
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
    ),
)

FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in FIELDS)
REQUIRED_FIELDS: tuple[str, ...] = tuple(f.name for f in FIELDS if f.required)
SPECS: dict[str, FieldSpec] = {f.name: f for f in FIELDS}
# The template's column order; a header-less legacy file is read in this order.
LEGACY_POSITIONAL_FIELDS: tuple[str, ...] = ("shipping_mark", "first_name", "last_name", "email", "phone")
UNIQUE_FIELDS: tuple[str, ...] = ("shipping_mark", "phone", "email")

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
USER_TYPES: tuple[str, ...] = ("INDIVIDUAL", "BUSINESS")


def label_of(field: str) -> str:
    """The label people see for a field name (`phone` -> `Phone`)."""
    spec = SPECS.get(field)
    return spec.label if spec else field.replace("_", " ").title()


class CustomerFrame(pa.DataFrameModel):
    """The normalised customer frame, as `importer.clean` leaves it (None = blank or invalid)."""

    shipping_mark: Series[str] = pa.Field(
        nullable=False, str_length={"max_value": 100}, str_matches=SHIPPING_MARK_PATTERN
    )
    first_name: Series[str] = pa.Field(nullable=False, str_length={"max_value": 50})
    last_name: Series[str] = pa.Field(nullable=False, str_length={"max_value": 50})
    email: Series[str] = pa.Field(nullable=True, str_length={"max_value": 254})
    phone: Series[str] = pa.Field(nullable=False, str_matches=E164_PATTERN)
    region: Series[str] = pa.Field(nullable=False, isin=list(REGIONS))
    company_name: Series[str] = pa.Field(nullable=True, str_length={"max_value": 100})
    nickname: Series[str] = pa.Field(nullable=True, str_length={"max_value": 50})
    user_type: Series[str] = pa.Field(nullable=False, isin=list(USER_TYPES))

    class Config:
        strict = False
        coerce = False
