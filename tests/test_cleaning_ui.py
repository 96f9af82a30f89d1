"""ui/cleaning.py in Streamlit's AppTest: value conversion, find and replace, skipped rows, mapping warnings."""

from __future__ import annotations

import pandas as pd
from streamlit.testing.v1 import AppTest

from tests.app_support import select_box
from ui import cleaning, keys


def conversion_page(kind: str) -> None:
    """What views/review.py does with the sections (AppTest runs this function's body as the script)."""
    import streamlit as st

    from importer.mapping.columns import sheet_notes
    from importer.settings import Settings
    from tests.fixtures import branch_files
    from ui import cleaning, keys, state

    settings = Settings()
    if "checked" not in st.session_state:
        from importer.checks.validate import check_frame
        from importer.intake.readers import open_file
        from importer.mapping.columns import apply_mapping, choose_sheet

        file = open_file(branch_files.kumasi_xlsx(40), "kumasi.xlsx", settings)
        _, rows, mapping = choose_sheet(file, None, 1000)
        if kind == "ignore-location":  # the analyst mapped Location to nothing: the file is read again so
            mapping = mapping.with_fields(tuple(None if f == "region" else f for f in mapping.fields))
            _, rows, _ = choose_sheet(file, None, 1000, mapping=mapping)
        frame = apply_mapping(rows, mapping, 1000)
        st.session_state["checked"] = check_frame(frame, settings)
        st.session_state["mapping"] = mapping
        st.session_state["notes"] = sheet_notes(rows)
    if notice := state.pop_notice():
        st.success(notice)
    checked = st.session_state["checked"]
    if kind == "convert":
        new = cleaning.show_value_conversion(checked, settings, version=state.version())
    elif kind == "replace":
        new = cleaning.show_find_replace(checked, settings, version=state.version())
    elif kind == "replace-section":  # as views/review.py draws it: in its expander
        new = cleaning.show_find_replace_section(checked, settings, version=state.version())
    elif kind == "skipped":
        cleaning.show_skipped_rows(st.session_state["notes"])
        new = None
    else:
        chosen = cleaning.show_mapping_warnings(st.session_state["mapping"], st.session_state["notes"], checked, settings)
        if chosen is not None:
            st.session_state["chosen"] = chosen.fields
        new = None
    if new is not None:
        st.session_state["checked"] = new
        st.session_state[keys.VERSION] = state.version() + 1
        st.rerun()


def app(kind: str) -> AppTest:
    return AppTest.from_function(conversion_page, args=(kind,), default_timeout=60).run()


def texts(at: AppTest) -> str:
    return "\n".join(str(e.value) for kind in ("markdown", "caption", "success", "warning", "info", "error")
                     for e in getattr(at, kind))


def test_value_conversion_lists_suggests_previews_and_applies():
    at = app("convert")
    assert not at.exception
    assert at.session_state[cleaning.CONVERT_FIELD] == "region"  # the column picked (ui.render.pick)
    assert select_box(at, "Column").options == ["Region (32 failing rows)"]
    grid = at.data_editor[0].value
    assert list(grid.columns) == ["Value", "Rows", "Convert to", "Why"]
    table = {v: None if pd.isna(t) else t for v, t in zip(grid["Value"], grid["Convert to"], strict=True)}
    assert table == {"Gt. Accra": "GREATER_ACCRA", "G/A": "GREATER_ACCRA", "Accra": "GREATER_ACCRA",
                     "Tema": "GREATER_ACCRA", "Kumasi": "ASHANTI", "B/A": "BRONG_AHAFO", "Kumassi": "ASHANTI",
                     "Somewhere Else": None}
    assert "8 different values fail in Region" in texts(at)
    assert "Fixes **28** failing rows · changes **28** rows" in texts(at)
    # the analyst picks a region for the unknown place and clears the typo's suggestion
    rows = grid["Value"].tolist()
    at.session_state[at.data_editor[0].key] = {"edited_rows": {
        rows.index("Somewhere Else"): {"Convert to": "VOLTA"}, rows.index("Kumassi"): {"Convert to": None}},
        "added_rows": [], "deleted_rows": []}
    at.run()
    assert "Fixes **28** failing rows · changes **28** rows" in texts(at)  # +4 Somewhere Else, -4 Kumassi
    at.button(key=cleaning.CONVERT_APPLY).click().run()
    assert not at.exception
    checked = at.session_state["checked"]
    assert len(checked.errors) == 4  # the four Kumassi rows the analyst left alone
    assert set(checked.original.loc[list(checked.errors), "region"]) == {"Kumassi"}
    assert "Region: " in texts(at) and "fixed 28 failing rows, changed 28; 4 rows still fail (were 32)." in texts(at)
    assert keys.LAST_OPERATION in at.session_state
    # the list now holds only what still fails
    assert at.data_editor[0].value["Value"].tolist() == ["Kumassi"]
    assert select_box(at, "Column").options == ["Region (4 failing rows)"]


def test_nothing_to_convert_says_so():
    at = app("convert")
    at.button(key=cleaning.CONVERT_APPLY).click().run()
    at.session_state[at.data_editor[0].key] = {"edited_rows": {0: {"Convert to": "AHAFO"}},
                                               "added_rows": [], "deleted_rows": []}
    at.run()
    at.button(key=cleaning.CONVERT_APPLY).click().run()
    assert not at.exception
    assert len(at.session_state["checked"].errors) == 0
    assert "No column has failing values to convert." in texts(at)


def test_find_and_replace_previews_then_applies():
    at = app("replace")
    assert "Type the text to find" in texts(at)
    at.selectbox(key=cleaning.REPLACE_FIELD).set_value("region").run()
    at.text_input(key=cleaning.REPLACE_FIND).input("Somewhere Else").run()
    at.text_input(key=cleaning.REPLACE_WITH).input("Oti").run()
    assert "Fixes **4** failing rows · changes **4** rows" in texts(at)
    at.checkbox(key=cleaning.REPLACE_CASE).uncheck().run()
    at.text_input(key=cleaning.REPLACE_FIND).input("somewhere ELSE").run()
    assert "Fixes **4** failing rows · changes **4** rows" in texts(at)
    at.button(key=cleaning.REPLACE_APPLY).click().run()
    assert not at.exception
    assert len(at.session_state["checked"].errors) == 28
    assert "Region: text 'somewhere ELSE' → 'Oti': fixed 4 failing rows, changed 4" in texts(at)


def test_replace_whole_blank_cells():
    at = app("replace")
    at.selectbox(key=cleaning.REPLACE_FIELD).set_value("nickname").run()
    at.checkbox(key=cleaning.REPLACE_WHOLE).check().run()
    at.text_input(key=cleaning.REPLACE_WITH).input("none given").run()
    assert "Fixes **0** failing rows · changes **40** rows" in texts(at)


def test_skipped_rows_are_listed():
    at = app("skipped")
    assert not at.exception
    assert at.expander[0].label == "2 rows skipped as footers or notes: not customers, not counted"
    table = at.dataframe[0].value
    assert table["Row"].tolist() == [43, 44]
    assert table["Text"].tolist()[0] == "TOTAL CUSTOMERS: 40"
    assert table["Why"].tolist() == ["a footer or note (starts with 'TOTAL')",
                                     "a footer or note (starts with 'Prepared by')"]


def test_mapping_warnings_offer_the_column_that_looks_like_regions():
    at = app("ignore-location")
    assert not at.exception
    assert "Location looks like regions: 78% of its values are towns or regions." in texts(at)
    at.button(key=f"{cleaning.MAP_SUGGESTED}region").click().run()
    assert at.session_state["chosen"][4] == "region"


def test_full_name_split_is_shown_with_one_word_names():
    at = app("warnings")
    assert not at.exception
    assert "Cust. Name is split into First Name + Last Name" in texts(at)
    preview = at.dataframe[0].value
    assert preview.iloc[0].tolist()[:4] == [3, "Kofi Mensah", "Kofi", "Mensah"]
    assert "one word" not in texts(at)  # every name of the Kumasi list has two words or more
