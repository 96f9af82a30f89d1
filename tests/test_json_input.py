"""Hostile JSON handed to the CLI (issue 22, item 7): `--mapping FILE.json` and `--operations FILE.json`.

Size and depth are limited before parsing, numbers while parsing, key types after: every bad file is one
line on stderr and exit status 2, never a traceback (RecursionError, ValueError, TypeError).
"""

from __future__ import annotations

import json
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from importer.cli import main
from importer.errors import UsageError
from importer.intake.json_input import (
    MAX_JSON_DEPTH,
    mapping_fields,
    nesting_depth,
    operation_dicts,
    parse_json,
    read_json_file,
)
from importer.review.conversions import operations_from_json
from tests.fixtures import corpus

HEADER = ["Shipping Mark", "First Name", "Last Name", "Email", "Phone"]


@pytest.fixture
def upload(tmp_path: Path) -> Path:
    path = tmp_path / "customers.xlsx"
    path.write_bytes(corpus.xlsx({"Customers": [HEADER, ["PM4 KOFI", "Kofi", "Mensah", "", "0241234567"]]}))
    return path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


DEEP = "[" * 100_000 + "]" * 100_000
BIG_INT = '{"Phone": ' + "9" * 5_000 + "}"

MAPPING_CASES = [
    (DEEP, "nests more than"),
    ('{"Phone": ' + "[" * 5_000 + "]" * 5_000 + "}", "nests more than"),
    (BIG_INT, "a number of 5,000 digits"),
    ('{"Phone": NaN}', "NaN is not a value JSON allows"),
    ('{"Phone": 5}', "the value of 'Phone' is a number"),
    ('{"Phone": ["phone"]}', "the value of 'Phone' is a list"),
    ('["phone"]', "must be one JSON object of column header -> field name"),
    ('"phone"', "must be one JSON object"),
]


@pytest.mark.parametrize(("text", "needle"), MAPPING_CASES)
def test_hostile_mapping_file_is_one_line_and_exit_2(capsys, upload: Path, tmp_path: Path, sqlite_url: str,
                                                     text: str, needle: str) -> None:
    """Before: RecursionError on deep nesting, ValueError on a 5,000-digit integer (tracebacks, exit 1)."""
    spec = tmp_path / "mapping.json"
    spec.write_text(text)
    code, out, err = run(capsys, "import", str(upload), "--dry-run", "--mapping", str(spec), "--database-url",
                         sqlite_url)
    assert (code, out) == (2, "")
    assert err.startswith(f"error: the mapping file {spec}") and needle in err, err
    assert err.count("\n") == 1 and "Traceback" not in err


OPERATION_CASES = [
    (DEEP, "nests more than"),
    ('[{"kind": "convert", "field": "region", "targets": {"a": ' + "1" * 5_000 + "}}]", "a number of 5,000 digits"),
    ('[{"kind": "replace", "field": "region", "find": 5, "replace": "x"}]', "operation 1: 'find' must be text, not a number"),
    ('[{"kind": "replace", "field": 7, "find": "a", "replace": "x"}]', "operation 1: 'field' must be text, not a number"),
    ('[{"kind": "convert", "field": "region", "targets": "ab"}]', "operation 1: 'targets' must be an object, not text"),
    ('[{"kind": "convert", "field": "region", "targets": [["a", "b"]]}]', "'targets' must be an object, not a list"),
    ('[{"kind": "convert", "field": "region", "targets": {"a": 1}}]', "'targets' 'a' must map to text or null"),
    ('[{"kind": "replace", "field": "region", "find": "a", "replace": "b", "whole_cell": "yes"}]',
     "'whole_cell' must be true or false, not text"),
    ('[{"kind": ["convert"]}]', "operation 1: unknown operation kind ['convert']"),
    ('[{"kind": "convert", "field": "region", "targets": {}}, 3]', "operation 2: expected an object"),
]


@pytest.mark.parametrize(("text", "needle"), OPERATION_CASES)
def test_hostile_operations_file_is_one_line_and_exit_2(capsys, upload: Path, tmp_path: Path, sqlite_url: str,
                                                        text: str, needle: str) -> None:
    """Before: RecursionError, TypeError on a number where text is expected, ValueError on a string where
    pairs are expected."""
    ops = tmp_path / "ops.json"
    ops.write_text(text)
    code, out, err = run(capsys, "import", str(upload), "--dry-run", "--operations", str(ops), "--database-url",
                         sqlite_url)
    assert (code, out) == (2, "")
    assert err.startswith("error: ") and needle in err, err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_oversized_file_is_refused_before_it_is_read_whole(tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    big.write_text('{"a": "' + "x" * 2_000_000 + '"}')
    with pytest.raises(UsageError, match=r"the mapping file big.json is over 1,024 KB"):
        read_json_file(big, "the mapping file big.json")


@pytest.mark.parametrize("flag", ["--mapping", "--operations"])
def test_a_too_big_file_is_refused_by_its_name_not_its_path(capsys, upload: Path, tmp_path: Path, sqlite_url: str,
                                                            flag: str) -> None:
    """Before: the refusal printed the file's full path (tmp/.../big.json), not the name the CONTRACT's one-line
    errors give."""
    folder = tmp_path / "a folder" / "deeper"
    folder.mkdir(parents=True)
    big = folder / "big.json"
    big.write_text('{"a": "' + "x" * 2_000_000 + '"}')
    code, out, err = run(capsys, "import", str(upload), "--dry-run", flag, str(big), "--database-url", sqlite_url)
    what = "mapping" if flag == "--mapping" else "operations"
    assert (code, out) == (2, "")
    assert err == (f"error: the {what} file big.json is over 1,024 KB (1,953 KB); a mapping or operations file is "
                   "far smaller\n")
    assert str(folder) not in err


def test_not_utf8_and_missing_and_folder(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(b'{"a": "\xff"}')
    with pytest.raises(UsageError, match="is not UTF-8 text"):
        read_json_file(bad, "the file")
    with pytest.raises(UsageError, match="does not exist"):
        read_json_file(tmp_path / "none.json", "the file")
    with pytest.raises(UsageError, match="is a folder"):
        read_json_file(tmp_path, "the file")


def test_depth_is_measured_outside_strings() -> None:
    assert nesting_depth('{"a": "[[[[[[[[[[[[[[[[[[[[[[\\"[[[["}') == (1, 1)
    assert nesting_depth('[\n[\n[1]]]') == (3, 3)
    assert parse_json('{"a": {"b": [1, 2]}}', "x") == {"a": {"b": [1, 2]}}


def test_good_files_still_read() -> None:
    ops = [{"kind": "convert", "field": "region", "targets": {"Gt. Accra": "GREATER_ACCRA", "x": None}},
           {"kind": "replace", "field": "phone", "find": "-", "replace": "", "whole_cell": False}]
    assert len(operations_from_json(json.dumps(ops), "ops.json")) == 2
    assert mapping_fields({"Mobile": "phone", "S/No": None}, "m") == {"Mobile": "phone", "S/No": None}


# -- fuzzing -----------------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-10**30, max_value=10**30) | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=30,
)
# Text that is JSON-ish but often broken: brackets, quotes, digits, keywords.
json_soup = st.text(alphabet=string.digits + '[]{}",:.-eE +\\ntrufalsNI' + "x", max_size=300)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=json_values)
def test_any_json_value_is_an_answer_or_one_usage_error(value: object) -> None:
    """Whatever parses: mapping_fields and operation_dicts (then the engine's from_dict) either accept it or
    raise UsageError; nothing else escapes."""
    text = json.dumps(value)
    for check in (lambda t: mapping_fields(parse_json(t, "m"), "m"),
                  lambda t: operations_from_json(t, "ops.json")):
        try:
            check(text)
        except UsageError as exc:
            assert "\n" not in str(exc)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=json_soup)
def test_any_text_is_parsed_or_refused_in_one_line(text: str) -> None:
    for check in (lambda t: mapping_fields(parse_json(t, "m"), "m"),
                  lambda t: operation_dicts(parse_json(t, "o"), "o")):
        try:
            check(text)
        except UsageError as exc:
            assert "\n" not in str(exc)


@settings(max_examples=50, deadline=None)
@given(depth=st.integers(min_value=MAX_JSON_DEPTH + 1, max_value=50_000), opener=st.sampled_from(["[", '{"a":']))
def test_any_deep_nesting_is_refused_before_parsing(depth: int, opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    with pytest.raises(UsageError, match="nests more than"):
        parse_json(opener * depth + "1" + closer * depth, "x")
