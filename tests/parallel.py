"""How the suite runs in parallel: ./test.sh runs `pytest -n 2 --dist loadgroup -m "not serial"`, then
`pytest -m serial` on its own. tests/conftest.py applies `mark` to every collected test.

Every test is independent of the others' data: each takes a fresh SQLite file (tmp_path) or a fresh
PostgreSQL database (tests/conftest.py), the dashboard servers of tests/e2e listen on free ports, and
AppTest runs in the worker's own process. What is left to arrange is load:

- GROUPS: tests that start processes doing heavy work (Chromium and a dashboard server; 100,000-row CLI
  imports killed and resumed; several imports at once; the fuzzer) run one after another on one worker
  (xdist_group), never two of a kind at once. Their waits are conditions on the database or the page
  with generous time limits, so the other worker's load only slows them.
- SERIAL: tests that time or measure this process itself with tight limits run alone, after the rest.
  Empty for now: a limit on this process's work is a count (rows read, parts inflated) or a tracemalloc
  peak, which another process's load does not change; speed itself is measured in bench/.

The tiers: `./test.sh --fast` runs FAST, the unit and SQLite tests a developer runs while working (no
Chromium, no PostgreSQL, nothing marked slow); ./test.sh and CI run everything. So that FAST needs no
list of its own, mark() also marks what the tests' own decorators do not say: every test of tests/e2e/
`e2e`, every test taking a PostgreSQL fixture `postgres`, and the heavy-process groups and SLOW `slow`.
"""

from __future__ import annotations

import pytest

# Node id prefix -> xdist group.
GROUPS = {
    "tests/e2e/": "browser",
    # The whole module: its quick tests run between the slow ones, so the 100,000-row workbook (a module
    # fixture) is built once.
    "tests/test_faults.py::": "processes",
    "tests/test_concurrency.py::": "processes",
    "tests/test_fuzz.py::test_mutated_files_never_crash_the_reader": "processes",
}
# Node id prefixes of the tests that must not share the machine.
SERIAL: tuple[str, ...] = ()
# The groups whose every test is `slow` (out of the fast tier), even the quick ones of their modules.
SLOW_GROUPS = {"processes"}
# Node id prefixes of tests marked `slow` for taking 3 s or more each (measured with -n 2 beside another
# suite run, so about twice a quiet machine's time): the longer AppTest flows, the CLI run under RSS
# watch and the longest property tests. The fast tier keeps each page's quick AppTest tests.
SLOW = (
    "tests/test_app_customers.py::test_pages_go_forward_back_and_to_the_first",
    "tests/test_app_customers.py::test_search_finds_a_customer_by_mark_name_phone_or_email",
    "tests/test_app_history.py::test_resume_an_interrupted_run",
    "tests/test_app_history.py::test_runs_table_chart_and_reports",
    "tests/test_app_history.py::test_undo_asks_with_the_count_then_deletes",
    "tests/test_app_history.py::test_undo_of_updates_says_what_it_restores_and_which_runs_block_it",
    "tests/test_app_load.py::test_a_dry_run_made_stale_by_another_tabs_import_is_named",
    "tests/test_app_load.py::test_a_re_import_counts_unchanged_rows_in_the_boxes_and_in_history",
    "tests/test_app_load.py::test_clean_import_has_no_report",
    "tests/test_app_load.py::test_import_needs_a_dry_run_first",
    "tests/test_app_load.py::test_import_then_result_and_downloads",
    "tests/test_app_review.py::test_a_change_from_a_blank_value_reads_blank",
    "tests/test_app_review.py::test_a_mapping_changed_after_review_keeps_the_edits",
    "tests/test_app_review.py::test_a_refresh_reopens_the_workspace_with_every_edit",
    "tests/test_app_review.py::test_accepting_a_change_updates_the_customer",
    "tests/test_app_review.py::test_an_edit_interrupted_while_it_is_checked_is_saved_by_the_next_run",
    "tests/test_app_review.py::test_an_edited_cell_is_checked_and_saved_at_once",
    "tests/test_app_review.py::test_bulk_fix_preview_and_apply",
    "tests/test_workspace_shared.py::test_an_edit_in_one_session_leaves_the_others_frame_until_it_reloads",
    "tests/test_workspace_shared.py::test_an_undo_then_a_new_change_is_not_taken_for_the_state_it_replaced",
    "tests/test_app_review.py::test_duplicate_in_file_side_by_side",
    "tests/test_app_review.py::test_exclude_ticked_rows",
    "tests/test_app_review.py::test_failing_rows_in_grid_with_errors_column",
    "tests/test_app_review.py::test_filter_by_reason",
    "tests/test_app_review.py::test_reject_all_after_accept_all",
    "tests/test_app_review.py::test_row_changing_a_customer_shows_the_diff_and_the_customer",
    "tests/test_app_review.py::test_valid_file_has_nothing_to_fix",
    "tests/test_app_security.py::test_hostile_file_renders_as_text_on_every_page",
    "tests/test_app_security.py::test_hostile_sheet_names_are_escaped_in_the_sheet_choice",
    "tests/test_app_security.py::test_import_of_messy_file_keeps_working",
    "tests/test_app_security.py::test_logout_drops_the_sessions_customer_data",
    "tests/test_app_upload.py::test_a_mapping_fixed_by_hand_is_remembered_for_the_next_file_with_those_headers",
    "tests/test_app_upload.py::test_continue_frees_the_uploaded_file",
    "tests/test_app_upload.py::test_mapping_cannot_use_one_field_twice",
    "tests/test_app_upload.py::test_missing_column_fixed_with_select_boxes",
    "tests/test_app_upload.py::test_sheet_picker_reads_another_sheet",
    "tests/test_exclusions_ui.py::test_the_dashboard_excludes_by_reason_lists_includes_and_reports",
    "tests/test_hostile.py::test_hostile_file_is_refused_by_the_cli_fast_and_lean",
    # This round's longest engine and AppTest tests (5 s or more beside a suite run; --durations).
    "tests/test_workspace.py::test_operations_are_summarised_in_the_users_words",
    "tests/test_properties.py::test_every_row_is_created_or_failed_and_valid_rows_are_created",
    "tests/test_properties.py::test_rows_already_in_the_database_are_unchanged",
    "tests/test_app_decisions.py::test_accept_blank_choice_and_keep_both_survive_a_refresh",
    "tests/test_workspace.py::test_undo_redo_and_a_new_operation_clears_the_redo_stack",
    "tests/test_report.py::test_xlsx_report_memory_does_not_grow_with_rows",
    "tests/test_app_wrong_customer.py::",
    "tests/test_read.py::test_million_row_csv_is_refused_early_and_lean",
    "tests/test_workspace.py::test_a_snapshot_replays_what_the_file_gives_and_a_broken_one_falls_back_to_the_file",
    "tests/test_ownership.py::test_an_admin_may_open_change_and_discard_anothers_workspace",
    "tests/test_workspace.py::test_excluded_rows_keep_their_text_through_fixes_and_come_back_as_they_were",
    "tests/test_provenance.py::test_a_resume_replays_the_state_the_run_began_with",
    "tests/test_session.py::test_undo_and_redo_through_the_session",
    "tests/test_workspace.py::test_a_second_tab_working_on_an_old_frame_replays_first",
    "tests/test_provenance.py::test_scenario_b_no_change_is_lost_to_a_running_import",
    "tests/test_workspace.py::test_an_interrupted_run_resumes_from_its_workspace_with_the_fixes_kept",
    "tests/test_workspace.py::test_a_snapshot_of_an_older_format_is_read_again_from_the_file_and_stored_anew",
    "tests/test_ownership.py::test_another_account_cannot_resume_a_run_an_admin_can",
    "tests/test_workspace.py::test_discard_expire_and_what_a_resumable_run_keeps",
    "tests/test_read.py::test_repetitive_32767_character_text_is_read_not_refused_as_a_bomb",
    "tests/test_cli.py::test_json_is_utf8_on_a_cp1252_console",
    "tests/test_provenance.py::test_scenario_a_the_raw_file_never_adopts_a_reviewed_run",
    "tests/test_hostile.py::test_a_long_notes_sheet_before_the_customers_does_not_refuse_the_file",
    "tests/test_hostile.py::test_every_report_is_formula_safe",
    # Property tests of many examples: 190-230 s each (the replay), 4-10 s (the column checks).
    "tests/test_workspace.py::test_replaying_saved_operations_equals_applying_them_live",
    "tests/test_workspace.py::test_a_mapping_change_reads_the_file_once_and_later_replays_start_from_its_snapshot",
    "tests/test_validate_columns.py::test_recheck_equals_checking_the_edited_table_afresh",
    "tests/test_validate_columns.py::test_check_cells_gives_what_check_frame_gives_for_those_cells",
    "tests/test_validate_columns.py::test_check_frame_equals_the_row_by_row_validator",
)
# Fixtures that reach the real PostgreSQL (tests/conftest.py).
POSTGRES_FIXTURES = {"pg_admin", "pg_url"}
# A browser test that fails is run once more, from a fresh server, database and page (pytest-rerunfailures;
# the run's summary lists it as RERUN). On CI's two cores, beside the other worker, a click can land on
# a canvas grid or a radio mid-redraw: four CI runs in a row each failed one different browser test that
# passes alone. A test that fails twice still fails the run, and the summary names every rerun.
BROWSER_RERUNS = 1
# ./test.sh --fast: pytest -m FAST.
FAST = "not e2e and not postgres and not slow"


def mark(items: list[pytest.Item]) -> None:
    """Add the xdist_group and serial marks GROUPS and SERIAL give, and the e2e, postgres and slow marks
    the tiers select on (module docstring)."""
    for item in items:
        for prefix, group in GROUPS.items():
            if item.nodeid.startswith(prefix):
                item.add_marker(pytest.mark.xdist_group(group))
                if group in SLOW_GROUPS:
                    item.add_marker(pytest.mark.slow)
                break
        if item.nodeid.startswith(SLOW):
            item.add_marker(pytest.mark.slow)
        if SERIAL and item.nodeid.startswith(SERIAL):
            item.add_marker(pytest.mark.serial)
        if item.nodeid.startswith("tests/e2e/"):
            item.add_marker(pytest.mark.e2e)
            item.add_marker(pytest.mark.flaky(reruns=BROWSER_RERUNS))
        if POSTGRES_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.postgres)
