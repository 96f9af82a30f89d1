"""importer.mapping.profiles: mappings remembered by header signature and name, applied to the next file with the
same headers, and the CLI's --mapping NAME | FILE.json; on a real SQLite file and a real PostgreSQL."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from importer.api import read_upload
from importer.database.schema import make_engine
from importer.errors import MissingColumns, NoHeader, UsageError
from importer.mapping import profiles
from importer.mapping.columns import ColumnMapping
from tests.fixtures import corpus
from tests.support import SETTINGS, ready_engine

# A branch's own headers: the detection finds Shipping Mark and Phone, not the names or the region.
BRANCH = ["S/No", "Shipping Mark", "Given", "Family", "Phone", "Zone"]


def branch_file(*rows: list[object], headers: list[str] = BRANCH, title: bool = True) -> bytes:
    top = [["Kumasi branch - October"], []] if title else []
    return corpus.xlsx({"Customers": [*top, headers, *rows]})


ROWS = [[1, "PM1 KOFI", "Kofi", "Mensah", "0241234567", "Ashanti"],
        [2, "PM2 AMA", "Ama", "Owusu", "0241234568", "Volta"]]


def confirmed(data: bytes) -> ColumnMapping:
    """What the analyst does on the Upload page: the detected mapping, with the names and region chosen."""
    with pytest.raises(MissingColumns) as refused:
        read_upload(data, "kumasi-oct.xlsx", SETTINGS)
    detected = refused.value.mapping
    assert detected is not None
    return detected.with_fields([None, "shipping_mark", "first_name", "last_name", "phone", "region"])


def test_signature_ignores_case_spacing_punctuation_and_trailing_blanks() -> None:
    sig = profiles.header_signature(BRANCH)
    assert profiles.header_signature(["s/no", " SHIPPING  MARK ", "given", "Family*", "phone", "Zone", "", ""]) == sig
    assert profiles.header_signature(list(reversed(BRANCH))) != sig
    assert profiles.header_signature([*BRANCH, "Remarks"]) != sig


def test_a_confirmed_mapping_is_found_again_for_the_same_headers(database_url: str) -> None:
    engine = ready_engine(database_url)
    mapping = confirmed(branch_file(*ROWS))
    saved = profiles.save_profile(engine, mapping, file_name="kumasi-oct.xlsx", user="ama")
    assert saved.name is None and saved.fields == mapping.fields
    november = branch_file([1, "PM9 YAW", "Yaw", "Boateng", "0201234567", "Central"], title=False)
    with pytest.raises(MissingColumns) as refused:
        read_upload(november, "kumasi-nov.xlsx", SETTINGS)
    detected = refused.value.mapping
    assert detected is not None
    found = profiles.find_profile(engine, detected.headers)
    assert found is not None and found.id == saved.id
    today = datetime.now().astimezone()
    assert found.notice == f"Mapping from kumasi-oct.xlsx, saved {today.day} {today:%b} by ama"
    upload = read_upload(november, "kumasi-nov.xlsx", SETTINGS, mapping=found.apply_to(detected))
    assert upload.checked.normalised.loc[2, ["first_name", "region"]].tolist() == ["Yaw", "CENTRAL"]
    assert profiles.find_profile(engine, [*BRANCH, "Remarks"]) is None


def test_named_profiles_replace_on_save_and_can_be_deleted(database_url: str) -> None:
    engine = ready_engine(database_url)
    mapping = confirmed(branch_file(*ROWS))
    first = profiles.save_profile(engine, mapping, name="  kumasi   branch ", file_name="a.xlsx", user="ama")
    assert first.name == "kumasi branch"
    assert first.notice.startswith("Mapping 'kumasi branch' (from a.xlsx), saved ")
    other = mapping.with_fields([None, "shipping_mark", "last_name", "first_name", "phone", None])
    again = profiles.save_profile(engine, other, name="kumasi branch", file_name="b.xlsx", user="kofi")
    assert again.id == first.id and again.fields == other.fields and again.file_name == "b.xlsx"
    unnamed = profiles.save_profile(engine, mapping)
    assert [(p.name, p.id) for p in profiles.list_profiles(engine)] == [("kumasi branch", first.id), (None, unnamed.id)]
    assert [p.id for p in profiles.profiles_named(engine, "kumasi branch")] == [first.id]
    profiles.delete_profile(engine, first.id)
    assert profiles.profiles_named(engine, "kumasi branch") == []
    assert [p.id for p in profiles.list_profiles(engine)] == [unnamed.id]


def test_a_profile_for_other_headers_is_refused_in_words(sqlite_url: str) -> None:
    engine = ready_engine(sqlite_url)
    saved = profiles.save_profile(engine, confirmed(branch_file(*ROWS)), name="kumasi")
    wider = ColumnMapping(3, (*BRANCH, "Remarks"), (None,) * 7, positional=False)
    with pytest.raises(UsageError, match="the saved mapping 'kumasi' is for the headers S/No, Shipping Mark"):
        saved.apply_to(wider)
    with pytest.raises(UsageError, match="without a header row"):
        profiles.save_profile(engine, ColumnMapping(None, ("Column A",), ("shipping_mark",), positional=True))


def test_a_database_without_tables_has_no_profiles(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    assert profiles.find_profile(engine, BRANCH) is None
    assert profiles.list_profiles(engine) == []


# --- resolve_mapping: what the CLI's --mapping does ---------------------------------------------------------


def test_mapping_by_name_finds_the_header_row(database_url: str) -> None:
    engine = ready_engine(database_url)
    profiles.save_profile(engine, confirmed(branch_file(*ROWS)), name="kumasi")
    sheet, mapping = profiles.resolve_mapping(engine, "kumasi", branch_file(*ROWS), "k.xlsx", SETTINGS)
    assert (sheet, mapping.header_row) == ("Customers", 3)
    upload = profiles.read_with_mapping(branch_file(*ROWS), "k.xlsx", SETTINGS, sheet, mapping)
    assert upload.checked.total == 2 and len(upload.checked.errors) == 0
    with pytest.raises(UsageError, match=r"no saved mapping named 'tema' \(saved mappings: kumasi\)"):
        profiles.resolve_mapping(engine, "tema", branch_file(*ROWS), "k.xlsx", SETTINGS)
    other = corpus.xlsx({"Customers": [["Mark", "First Name", "Last Name", "Phone"], ["PM1 KOFI", "K", "M", "0241"]]})
    with pytest.raises(UsageError, match="'kumasi' is for the headers S/No, .*; no row in the first 30 rows of o.xlsx"):
        profiles.resolve_mapping(engine, "kumasi", other, "o.xlsx", SETTINGS)


def test_no_profiles_yet_says_so(sqlite_url: str) -> None:
    with pytest.raises(UsageError, match="no mapping has been saved yet"):
        profiles.resolve_mapping(make_engine(sqlite_url), "kumasi", branch_file(*ROWS), "k.xlsx", SETTINGS)


def write_json(tmp_path: Path, content: object) -> str:
    path = tmp_path / "branch.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(path)


UNKNOWN = ["Code", "Given", "Family", "Contact No", "Zone"]  # no header the detection knows at all


def test_mapping_file_maps_headers_the_detection_does_not_know(tmp_path: Path, sqlite_url: str) -> None:
    data = branch_file(["PM1 KOFI", "Kofi", "Mensah", "0241234567", "Ashanti"], headers=UNKNOWN)
    with pytest.raises(NoHeader):
        read_upload(data, "k.xlsx", SETTINGS)
    spec = write_json(tmp_path, {"code": "shipping_mark", "Given": "first_name", "FAMILY": "last_name",
                                 "Contact No": "phone", "Zone": "region"})
    sheet, mapping = profiles.resolve_mapping(make_engine(sqlite_url), spec, data, "k.xlsx", SETTINGS)
    upload = profiles.read_with_mapping(data, "k.xlsx", SETTINGS, sheet, mapping)
    assert upload.checked.normalised.loc[4].dropna().to_dict() == {
        "shipping_mark": "PM1 KOFI", "first_name": "Kofi", "last_name": "Mensah", "phone": "+233241234567",
        "region": "ASHANTI", "user_type": "INDIVIDUAL"}


def test_mapping_file_names_only_some_columns_the_rest_are_detected(tmp_path: Path, sqlite_url: str) -> None:
    data = branch_file(*ROWS)
    spec = write_json(tmp_path, {"Given": "first_name", "Family": "last_name", "Zone": "region", "S/No": None})
    _, mapping = profiles.resolve_mapping(make_engine(sqlite_url), spec, data, "k.xlsx", SETTINGS)
    assert mapping.fields == (None, "shipping_mark", "first_name", "last_name", "phone", "region")
    taken = write_json(tmp_path, {"Given": "first_name", "Family": "last_name", "Zone": "phone", "Shipping Mark":
                                  "shipping_mark"})  # the Phone column loses its detected field to Zone
    _, mapping = profiles.resolve_mapping(make_engine(sqlite_url), taken, data, "k.xlsx", SETTINGS)
    assert mapping.fields == (None, "shipping_mark", "first_name", "last_name", None, "phone")


@pytest.mark.parametrize("content, needle", [
    ("{not json", r"branch.json is not valid JSON: Expecting property name enclosed in double quotes at line 1"),
    ('["region"]', r"must be one JSON object of column header -> field name \(null to ignore a column\), e.g."),
    ('{"Zone": 3}', r"must be one JSON object"),
    ('{"Location": "region"}', r"names column\(s\) k.xlsx does not have in its first 30 rows: location"),
    ('{"Zone": "county", "Given": "first_name", "Family": "last_name"}', r"branch.json: unknown field\(s\) county"),
    ('{"Zone": "phone", "Given": "phone", "Family": "last_name"}',
     r"Each field can come from one column only; pick one column for: Phone"),
    ('{"Given": "first_name"}', r"Still missing required field\(s\): Last Name"),
])
def test_bad_mapping_files_are_one_clear_line(tmp_path: Path, sqlite_url: str, content: str, needle: str) -> None:
    spec = write_json(tmp_path, content)
    with pytest.raises(UsageError, match=needle):
        profiles.resolve_mapping(make_engine(sqlite_url), spec, branch_file(*ROWS), "k.xlsx", SETTINGS)


def test_missing_mapping_file(tmp_path: Path, sqlite_url: str) -> None:
    with pytest.raises(UsageError, match=r"the mapping file .*nowhere.json does not exist"):
        profiles.resolve_mapping(make_engine(sqlite_url), str(tmp_path / "nowhere.json"), branch_file(*ROWS),
                                 "k.xlsx", SETTINGS)


def test_the_remembered_mapping_rule_is_the_engines(database_url: str) -> None:
    """Both faces read a file whose headers have a saved mapping with it (profiles.remembered_mapping); not
    when nothing is saved for them, or when the mapping in hand is the saved one already."""
    engine = ready_engine(database_url)
    november = branch_file([1, "PM9 YAW", "Yaw", "Boateng", "0201234567", "Central"], title=False)
    with pytest.raises(MissingColumns) as refused:
        read_upload(november, "kumasi-nov.xlsx", SETTINGS)
    detected = refused.value.mapping
    assert detected is not None
    assert profiles.remembered_mapping(engine, detected) is None  # nothing saved yet
    saved = profiles.save_profile(engine, confirmed(branch_file(*ROWS)), file_name="kumasi-oct.xlsx", user="ama")
    found = profiles.remembered_mapping(engine, detected)
    assert found is not None and found[1].id == saved.id
    assert found[0].fields == (None, "shipping_mark", "first_name", "last_name", "phone", "region")
    again = profiles.remembered_mapping(engine, found[0])  # read with it already: nothing more to change
    assert again is None


def test_the_cli_reads_with_the_mapping_saved_for_the_headers(sqlite_url: str, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """The CLI follows the dashboard's rule: no --mapping, and the headers have a saved mapping: read with it
    (a note says so); --mapping detect reads with the detected one, which lacks the names here."""
    from importer import cli

    engine = ready_engine(sqlite_url)
    profiles.save_profile(engine, confirmed(branch_file(*ROWS)), file_name="kumasi-oct.xlsx", user="ama")
    path = tmp_path / "kumasi-nov.xlsx"
    path.write_bytes(branch_file([1, "PM9 YAW", "Yaw", "Boateng", "0201234567", "Central"], title=False))
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    assert cli.main(["import", str(path), "--dry-run"]) == 0
    err = capsys.readouterr().err
    assert "note: read with the mapping saved for these headers (Mapping from kumasi-oct.xlsx" in err
    assert cli.main(["import", str(path), "--dry-run", "--mapping", "detect"]) == 2
    assert "First Name" in capsys.readouterr().err
