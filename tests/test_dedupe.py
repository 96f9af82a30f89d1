"""In-file duplicates: on normalised keys, the first row wins, later rows name it."""

from __future__ import annotations

import pandas as pd

from importer.dedupe import find_duplicates_in_file
from importer.results import ErrorCode


def normalised(rows: dict[int, tuple[str | None, str | None, str | None]]) -> pd.DataFrame:
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=["shipping_mark", "phone", "email"], dtype=object)
    frame.index.name = "source_row_number"
    return frame


def test_first_occurrence_wins_on_every_key() -> None:
    errors = find_duplicates_in_file(normalised({
        2: ("PM1", "+233241234567", "a@x.com"),
        5: ("PM1", "+233241234568", None),
        7: ("PM2", "+233241234567", "a@x.com"),
        9: ("PM1", "+233241234567", None),
    }))
    assert set(errors) == {5, 7, 9}
    assert [(e.field, e.code) for e in errors[7]] == [("phone", ErrorCode.DUPLICATE_IN_FILE),
                                                     ("email", ErrorCode.DUPLICATE_IN_FILE)]
    assert all("row 2" in e.message for e in errors[9])


def test_rows_are_compared_in_source_order_whatever_the_frame_order() -> None:
    errors = find_duplicates_in_file(normalised({9: ("PM1", "+1", None), 3: ("PM1", "+2", None)}))
    assert list(errors) == [9]


def test_missing_keys_never_collide() -> None:
    assert find_duplicates_in_file(normalised({2: (None, None, None), 3: (None, None, None)})) == {}
