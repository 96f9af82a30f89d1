"""The names a session stores values under, and the keys of widgets: one place, no string literals in pages."""

# --- session values -----------------------------------------------------------------------------
UPLOAD = "upload"  # importer.api.Upload: the one file being worked on
VERSION = "upload_version"  # bumped whenever UPLOAD changes; derived results carry it
REFUSAL = "upload_refusal"  # one-line reason the last file was refused
DRAFT_MAPPING = "upload_draft_mapping"  # (file name, sheet, ColumnMapping) to fix missing columns
PARSED_FILE_ID = "upload_parsed_file_id"  # uploader file id already parsed, so reruns do not re-read
UPLOADER_NONCE = "upload_nonce"  # part of the uploader key: a new value empties the widget
CLASSIFICATION = "review_classification"  # ((version, blank), Classification | why the database was not asked)
CHANGES_NONCE = "existing_changes_nonce"  # part of the changes grid's key: Accept/Reject all redraw it
FIX_COUNTS = "review_fix_counts"  # (version, options, {fix key: (failing rows it fixes, rows it changes)})
# The ONE run result a session keeps: the dry run of the current upload version, or the last real
# import (after which the upload is dropped). Its failures are not copies: a dry run's stream from the
# upload's own frame, a real run's from the database.
RESULT = "run_result"
DRY_RUN_SAW = "run_result_database"  # importer.review.staleness.DatabaseState the dry run saw (stale_reason)
RESULT_FOR = "run_result_version"  # upload version a dry-run RESULT was computed for
WORKSPACE_PARAM = "ws"  # the address's query parameter naming the open workspace: ?ws=12
WORKSPACE_PARAM_PAGE = "workspace_param_page"  # the page whose first run last sent it (ui.workspace.restore)
WORKSPACE = "workspace"  # (WorkspaceInfo, version, active seqs) of the UPLOAD, saved in the database
WORKSPACE_EXCLUDED = "workspace_excluded"  # (workspace id, version, Excluded records): its excluded rows then
WORKSPACE_DECISIONS = "workspace_decisions"  # ((workspace id, version), importer.review.decisions.Decisions)
LAST_OPERATION = "workspace_last_operation"  # the operation a section applied, saved by workspace.set_checked
PENDING_EDITS = "review_pending_edits"  # [{row: {field: text}}] typed in the grid, recorded on the next run
NOTICE = "notice"  # one message shown once on the next run (what an action just did)
PASSWORD_OK = "auth_password_ok"
USER_NAME = "auth_user_name"
UNDO_CONFIRM = "history_undo_pending"  # run id waiting for the user's confirmation

# --- widget keys (stable: tests and the browser tests find widgets by them) ------------------------
LOGIN_NAME = "login_name"
LOGIN_PASSWORD = "login_password"
UPLOADER = "upload_file"  # + "_" + nonce
SHEET = "upload_sheet"
MAPPING_FORM = "upload_mapping_form"
MAP_COLUMN = "upload_map_"  # + column index
CONTINUE = "upload_continue"
REASON_FILTER = "review_reason"
GRID = "review_grid"
EXCLUDE = "review_exclude"
FIX_ONLY_FAILING = "review_fix_only_failing"
FILL_REGION = "review_fill_region"
FIX_APPLY = "review_fix_"  # + fix key
DUPLICATE_PICK = "review_duplicate"
WORKSPACE_UNDO = "workspace_undo"
WORKSPACE_REDO = "workspace_redo"
WORKSPACE_GO_TO = "workspace_go_to"  # + seq: step back to just after that operation
WORKSPACE_OPEN = "workspace_open_"  # + workspace id
WORKSPACE_DISCARD = "workspace_discard_"  # + workspace id
DUPLICATES_ON = "review_possible_duplicates"  # the toggle that runs the possible-duplicates search
BLANK_WIDGET = "existing_blank_choice"
CHANGES_FIELD = "existing_changes_field"
CHANGES_GRID = "existing_changes_grid"  # + version, field filter, nonce
ACCEPT_ALL = "existing_accept_all"
REJECT_ALL = "existing_reject_all"
DIFFERENT_PICK = "existing_different_pick"
CONFIRM_PERSON = "existing_confirm_person"
JOIN_SPLIT = "review_join_split"
REGION_DEFAULT_OFF = "review_region_default_off"
REMEMBERED_CONVERSIONS = "review_remembered_conversions"  # derived: (version, headers) -> decisions
DRY_RUN_BUTTON = "import_dry_run"
IMPORT_BUTTON = "import_start"
IMPORT_CSV = "import_report_csv"
IMPORT_XLSX = "import_report_xlsx"
HISTORY_RUN = "history_run"
HISTORY_CSV = "history_report_csv"
HISTORY_XLSX = "history_report_xlsx"
UNDO = "history_undo"
UNDO_YES = "history_undo_confirm"
UNDO_NO = "history_undo_cancel"
RESUME_FILE = "history_resume_file"
RESUME_BUTTON = "history_resume"

# --- the Customers page ---------------------------------------------------------------------------
CUSTOMERS_QUERY = "customers_query"  # (text, region, run id, page size): the filters the cursor belongs to
CUSTOMERS_CURSOR = "customers_cursor"  # list of page-start ids walked so far (keyset paging)
CUSTOMERS_EXPORT = "customers_export"  # ((text, region, run id), count up to the Excel limit, capped)
CUSTOMERS_SEARCH = "customers_search"
CUSTOMERS_REGION = "customers_region"
CUSTOMERS_RUN = "customers_run"
CUSTOMERS_PAGE_SIZE = "customers_page_size"
CUSTOMERS_PREVIOUS = "customers_previous"
CUSTOMERS_NEXT = "customers_next"
CUSTOMERS_FIRST = "customers_first"
CUSTOMERS_TABLE = "customers_table"
CUSTOMERS_DETAIL = "customers_detail"
CUSTOMERS_CSV = "customers_export_csv"
CUSTOMERS_XLSX = "customers_export_xlsx"
