"""The possible-duplicates search's memory: its blocks walked a chunk at a time, its charge with the governor
(the pairs it finds: tests/test_duplicates.py)."""

import numpy as np

from importer.review.lookalikes import _block_bounds
from importer.server import governor


def test_blocks_are_walked_a_chunk_at_a_time_and_none_is_lost_or_repeated():
    """A re-import's million blocks are turned into Python numbers a chunk at a time (_block_bounds): every
    block comes out once, in order, whatever the chunk size and across chunk edges."""
    columns = [np.arange(10, dtype=np.int64) * k for k in (1, 2, 3)]
    whole = list(zip(*(c.tolist() for c in columns), strict=True))
    for chunk in (1, 3, 4, 10, 50):
        assert list(_block_bounds(*columns, chunk=chunk)) == whole
    assert list(_block_bounds(np.empty(0, np.int64), np.empty(0, np.int64), chunk=3)) == []


def test_a_search_against_stored_customers_is_charged_for_them():
    """The governor charges a search by the stored customers too: a re-import of 100,000 customers measured
    219 MB against 67 MB for the file alone, more than the 250 MB budget's share of a file-only charge."""
    alone, against = governor.cost_of_search(100_000, 0), governor.cost_of_search(100_000, 97_957)
    assert 67 <= alone < 100 and against >= 219
