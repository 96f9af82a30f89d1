"""Realistic customer workbooks for benchmarks: office-style headers, ~2% invalid rows, numeric phones."""

from __future__ import annotations

import io
import random

from openpyxl import Workbook

HEADERS = ["Shipping Mark", "First Name", "Surname", "E-mail", "Mobile", "Region", "Company", "Notes"]
FIRST = ["Kofi", "Ama", "Kwame", "Abena", "Yaw", "Akosua", "Kojo", "Efua", "Kwabena", "Adwoa"]
LAST = ["Mensah", "Owusu", "Boateng", "Asante", "Osei", "Addo", "Appiah", "Darko", "Amoah", "Quaye"]
REGIONS = ["Greater Accra", "Ashanti Region", "volta", "BONO_EAST", "", "Central", "Northern"]
PREFIXES = ["024", "054", "055", "020", "050", "027", "026", "057"]


def customer_rows(count: int, seed: int = 42, invalid_share: float = 0.02, start: int = 0) -> list[list[object]]:
    """`count` data rows; about `invalid_share` of them fail (bad phone, blank name, or a repeated mark)."""
    rnd = random.Random(seed)
    rows: list[list[object]] = []
    for i in range(start, start + count):
        phone: object = f"{PREFIXES[i % len(PREFIXES)]}{i % 10_000_000:07d}"
        if i % 3 == 0:
            phone = int(str(phone)[1:])  # Excel dropped the zero
        row: list[object] = [
            f"pm{i}  {FIRST[i % 10].lower()}", FIRST[i % 10], LAST[(i // 10) % 10],
            f"{FIRST[i % 10].lower()}.{i}@example.com" if i % 4 else "", phone, REGIONS[i % len(REGIONS)],
            "Trading Ltd" if i % 9 == 0 else "", "",
        ]
        if rnd.random() < invalid_share:
            kind = rnd.randrange(3)
            if kind == 0:
                row[4] = "54123"
            elif kind == 1:
                row[1] = ""
            else:
                row[0] = f"pm{max(start, i - 1)}  {FIRST[max(start, i - 1) % 10].lower()}"
        rows.append(row)
    return rows


def customer_workbook(count: int, seed: int = 42, start: int = 0, invalid_share: float = 0.02) -> bytes:
    """An .xlsx with a title row, a blank row, the header, then `count` customers."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet("Customers")
    sheet.append(["Customer list - exported from the old system"])
    sheet.append([])
    sheet.append(HEADERS)
    for row in customer_rows(count, seed, invalid_share=invalid_share, start=start):
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
