"""What a zip upload really is, by its parts, whatever its name says.

python-calamine opens any spreadsheet container it recognises (OpenDocument, .xlsb) whatever the file is
called, and its OpenDocument reader expands table:number-columns-repeated / number-rows-repeated into
real cells: a 900-byte .ods renamed .xlsx asked it for gigabytes. The contract reads .xlsx/.xlsm, .xls and
CSV only, so the other containers are named and refused here, from the zip's directory, before any
parser sees them.
"""

from __future__ import annotations

import zipfile
from pathlib import PurePath

from importer.errors import UnsupportedFile

# (what the file is, what to do). Keys: the kinds identify() returns.
_OTHER_KINDS = {
    "ods": ("an OpenDocument spreadsheet (.ods)", "open it (LibreOffice, Excel) and save it as .xlsx"),
    "xlsb": ("an Excel binary workbook (.xlsb)", "open it in Excel and save it as .xlsx (Excel Workbook)"),
    "docx": ("a Word document", "export the customer list from the spreadsheet it came from as .xlsx or CSV"),
    "pptx": ("a PowerPoint presentation", "export the customer list from its spreadsheet as .xlsx or CSV"),
    "odf": ("an OpenDocument file that is not a spreadsheet", "save the customer list as .xlsx or CSV"),
}
_MIMETYPE_BYTES = 128


def identify(zf: zipfile.ZipFile) -> str:
    """"xlsx" for an Office Open XML workbook (also .xlsm), a key of _OTHER_KINDS, or "unknown"."""
    names = {name.lower() for name in zf.namelist()}
    if "xl/workbook.xml" in names:
        return "xlsx"
    if "xl/workbook.bin" in names:
        return "xlsb"
    if "mimetype" in names or "content.xml" in names:
        mimetype = _mimetype(zf)
        if mimetype.startswith(b"application/vnd.oasis.opendocument.spreadsheet") or (
            not mimetype and "content.xml" in names
        ):
            return "ods"
        if mimetype.startswith(b"application/vnd.oasis.opendocument"):
            return "odf"
    if "word/document.xml" in names:
        return "docx"
    if "ppt/presentation.xml" in names:
        return "pptx"
    return "unknown"


def _mimetype(zf: zipfile.ZipFile) -> bytes:
    """The first bytes of the OpenDocument "mimetype" part (b"" if absent or unreadable)."""
    info = next((i for i in zf.infolist() if i.filename.lower() == "mimetype"), None)
    if info is None or info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        return b""
    try:
        with zf.open(info) as part:
            return part.read(_MIMETYPE_BYTES).strip()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError, RuntimeError):
        return b""


def refuse_other_container(zf: zipfile.ZipFile, file_name: str) -> None:
    """UnsupportedFile naming what the zip really is, when it is a known container other than a workbook.

    An unknown zip is left to the workbook checks and readers, which call it damaged.
    """
    kind = identify(zf)
    if kind not in _OTHER_KINDS:
        return
    what, todo = _OTHER_KINDS[kind]
    ext = PurePath(file_name).suffix.lower() or "without an extension"
    named = f"renamed {ext}" if ext.startswith(".") else ext
    raise UnsupportedFile(f"{file_name} is {what} {named}, not an Excel workbook; {todo}, then upload it again.")
