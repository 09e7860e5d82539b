"""Read an uploaded CSV (plain, gzip or single-file zip) into a pyarrow Table, safely.

Everything that can go wrong becomes a ScoringError whose message a learner can act on; pyarrow,
zlib and zipfile exceptions never escape. Compressed uploads are inflated by streaming into a
temporary file with a running size cap, so a compression bomb is stopped after at most
``max_decompressed_bytes`` have been written, never materialised in memory.

Rows are capped before anything is parsed: line breaks are counted while the bytes stream
(inflating, or one pass over a plain file), and a file with more lines than the row cap is
refused there. Parsing builds columns for every row at once, so without this a small gzip of
hundreds of millions of tiny rows would take gigabytes of memory before any check ran. When the
caller knows how many rows to expect (the solution's), the cap is that count plus a small
margin, so memory stays proportional to the challenge's test set, not to the upload. A line
break inside a quoted value counts as a row here; a submission has ids and predictions, where
that does not happen in practice, and the margin absorbs a few.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import re
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from .errors import ScoringError
from .errors import show as _show
from .sniff import read_head, sniff

MiB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 200 * MiB
    max_decompressed_bytes: int = 1024 * MiB
    max_rows: int = 20_000_000
    max_columns: int = 1000
    max_line_bytes: int = 1 * MiB
    # The rows a valid file has (the solution's); caps the rows at that plus row_margin().
    expected_rows: int | None = None

    @property
    def row_cap(self) -> int:
        if self.expected_rows is None:
            return self.max_rows
        return min(self.max_rows, self.expected_rows + row_margin(self.expected_rows))


def row_margin(expected_rows: int) -> int:
    """Extra rows read past the expected count: enough for a few duplicates or stray lines to be
    reported precisely by the id checks, too few to matter for memory."""
    return max(100, expected_rows // 100)


DEFAULT_LIMITS = Limits()

_COMPRESSED = ("gzip", "zip")
# Formats uploaded by mistake, named in the message (others fall through to the binary check).
_MISTAKEN_FORMATS = {
    "bzip2": "bzip2-compressed",
    "xz": "xz-compressed",
    "7z": "a 7-Zip archive",
    "rar": "a RAR archive",
    "parquet": "a Parquet file",
    "xls": "an old-style Excel (.xls) workbook",
    "pdf": "a PDF document",
}
_CHUNK = 1 * MiB
# macOS Finder adds these to every zip it makes; they are never the data.
_ZIP_JUNK = re.compile(r"(^|/)(__MACOSX/|\.DS_Store$)")


def _mb(n: int) -> str:
    return f"{n / MiB:g} MB"


def read_submission(
    path: str | Path,
    *,
    columns: list[str],
    numeric_columns: list[str],
    limits: Limits = DEFAULT_LIMITS,
) -> pa.Table:
    """Read a submission whose header must hold exactly ``columns`` (in any order).

    ``numeric_columns`` become float64 (empty cells are nulls); every other column is a
    string column in which empty cells stay empty strings.
    """

    def check(header: list[str]) -> None:
        _check_exact_header(header, columns, limits)

    return read_csv_table(path, numeric_columns=numeric_columns, check_header=check, limits=limits)


def read_csv_table(
    path: str | Path,
    *,
    numeric_columns: Sequence[str] = (),
    check_header: Callable[[list[str]], None] | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> pa.Table:
    """Read any CSV upload; ``check_header(names)`` may raise ScoringError before the body is
    parsed. Columns not in ``numeric_columns`` are read as strings."""
    path = Path(path)
    with _plain_csv(path, limits) as plain:
        header = _read_header(plain, limits)
        if len(header) > limits.max_columns:
            raise ScoringError(
                f"The header has {len(header)} columns; at most {limits.max_columns} are allowed."
            )
        _check_unique_header(header)
        if check_header is not None:
            check_header(header)
        numeric = set(numeric_columns)
        types = {name: (pa.float64() if name in numeric else pa.string()) for name in header}
        table = _parse(plain, header, types, limits)
    if table.num_rows == 0:
        raise ScoringError("The file has a header but no data rows.")
    if table.num_rows > limits.row_cap:
        raise _too_many_rows(limits)
    return table


def _too_many_rows(limits: Limits) -> ScoringError:
    if limits.expected_rows is not None and limits.row_cap < limits.max_rows:
        return ScoringError(
            f"The file has more than {limits.row_cap:,} rows; expected {limits.expected_rows:,}, one per id."
        )
    return ScoringError(
        f"The file has more than {limits.row_cap:,} rows; at most {limits.max_rows:,} are allowed."
    )


class _LineCount:
    """Counts line breaks as chunks stream past and refuses the file once the data lines (all
    but the header) exceed the row cap: memchr-speed, no parsing."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.lines = 0

    def add(self, chunk: bytes) -> None:
        self.lines += chunk.count(b"\n")
        if self.lines - 1 > self.limits.row_cap:
            raise _too_many_rows(self.limits)


def _count_lines(path: Path, limits: Limits) -> None:
    counter = _LineCount(limits)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            counter.add(chunk)


# -- container formats ---------------------------------------------------------------------


@contextlib.contextmanager
def _plain_csv(path: Path, limits: Limits) -> Iterator[Path]:
    """Yield a path to the uncompressed CSV bytes, decompressing into a temp dir if needed."""
    try:
        size, head = read_head(path)
    except OSError:
        raise ScoringError("The uploaded file could not be opened.") from None
    if size == 0:
        raise ScoringError("The file is empty.")
    if size > limits.max_bytes:
        raise ScoringError(f"The file is {_mb(size)}; the largest allowed upload is {_mb(limits.max_bytes)}.")
    container = sniff(head)
    if container in _COMPRESSED:
        with tempfile.TemporaryDirectory(prefix="holdout-") as tmp:
            out = Path(tmp) / "inflated.csv"
            if container == "gzip":
                _inflate_gzip(path, out, limits)
            else:
                _inflate_zip(path, out, limits)
            if out.stat().st_size == 0:
                raise ScoringError("The compressed file contains an empty file.")
            _check_text_start(out, compressed=True)
            yield out
        return
    _check_text_start(path, compressed=False)
    _count_lines(path, limits)
    yield path


def _check_text_start(path: Path, *, compressed: bool) -> None:
    with open(path, "rb") as f:
        start = f.read(4096)
    inner = "The file inside the archive" if compressed else "The file"
    kind = sniff(start)
    if kind in _COMPRESSED:
        raise ScoringError(f"{inner} is itself compressed; compress the CSV only once.")
    if kind in _MISTAKEN_FORMATS:
        raise ScoringError(
            f"{inner} looks like {_MISTAKEN_FORMATS[kind]}. Upload a CSV file, optionally compressed "
            "as .gz or as a .zip holding one CSV."
        )
    if start.startswith((b"\xff\xfe", b"\xfe\xff")) or start[:200].count(b"\x00") > 10:
        raise ScoringError(f"{inner} looks like UTF-16 text or binary data; save it as a UTF-8 CSV file.")
    if b"\x00" in start:
        raise ScoringError(f"{inner} contains binary data (NUL bytes); it must be a UTF-8 CSV.")


def _copy_capped(src: BinaryIO, out: Path, limits: Limits) -> None:
    cap = limits.max_decompressed_bytes
    written = 0
    lines = _LineCount(limits)
    with open(out, "wb") as dst:
        while True:
            # read(n) on GzipFile/ZipExtFile returns at most n inflated bytes, so memory
            # stays bounded by _CHUNK however well the data compresses.
            chunk = src.read(_CHUNK)
            if not chunk:
                return
            written += len(chunk)
            if written > cap:
                raise ScoringError(
                    f"The decompressed size exceeds {_mb(cap)}, the most allowed; upload a smaller file."
                )
            lines.add(chunk)
            dst.write(chunk)


def _inflate_gzip(path: Path, out: Path, limits: Limits) -> None:
    try:
        with gzip.open(path, "rb") as src:
            _copy_capped(src, out, limits)
    except EOFError:
        raise ScoringError(
            "The gzip file is truncated (it ends before the end of the compressed data); upload it again."
        ) from None
    except (gzip.BadGzipFile, zlib.error, OSError):
        raise ScoringError("The gzip file is corrupt and could not be decompressed.") from None


def _inflate_zip(path: Path, out: Path, limits: Limits) -> None:
    try:
        with zipfile.ZipFile(path) as zf:
            infos = [i for i in zf.infolist() if not _ZIP_JUNK.search(i.filename)]
            dirs = [i for i in infos if i.is_dir()]
            files = [i for i in infos if not i.is_dir()]
            for info in infos:
                name = info.filename.replace("\\", "/")
                if name.startswith("/") or ".." in name.split("/") or re.match(r"^[A-Za-z]:", name):
                    raise ScoringError(
                        f"The zip file contains an unsafe path {_show(info.filename)}; it must "
                        "hold one CSV file with a plain name."
                    )
            if len(files) != 1:
                names = ", ".join(_show(i.filename, 40) for i in files[:5])
                found = f" ({names})" if files else ""
                raise ScoringError(
                    f"The zip file must contain exactly one CSV file; it contains {len(files)} "
                    f"files{found}" + (f" and {len(dirs)} folders." if dirs else ".")
                )
            (info,) = files
            if info.flag_bits & 0x1:
                raise ScoringError("The zip file is password-protected; upload an unencrypted file.")
            with zf.open(info) as src:
                _copy_capped(src, out, limits)
    except ScoringError:
        raise
    except NotImplementedError:
        raise ScoringError(
            "The zip file uses an unsupported compression method; use standard (deflate) zip."
        ) from None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError, ValueError):
        raise ScoringError("The zip file is corrupt or truncated and could not be read.") from None


# -- CSV ------------------------------------------------------------------------------------


def _read_header(path: Path, limits: Limits) -> list[str]:
    with open(path, "rb") as f:
        first = f.read(limits.max_line_bytes + 4)
    if first.startswith(b"\xef\xbb\xbf"):
        first = first[3:]
    end = first.find(b"\n")
    if end < 0:
        if len(first) > limits.max_line_bytes:
            raise ScoringError(f"Line 1 is longer than {limits.max_line_bytes:,} bytes, the most allowed.")
        raise ScoringError("The file has a header but no data rows.")
    line = first[:end].rstrip(b"\r")
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise ScoringError(
            "The header (line 1) is not valid UTF-8 text; save the file as UTF-8 "
            "(for example 'CSV UTF-8' in Excel)."
        ) from None
    if not text.strip():
        raise ScoringError("Line 1 is empty; the first line must be the header.")
    try:
        (names,) = list(csv.reader([text], strict=True))
    except (csv.Error, ValueError):
        raise ScoringError(f"The header (line 1) is not valid CSV: {_show(text)}.") from None
    return names


def _check_unique_header(header: list[str]) -> None:
    seen: set[str] = set()
    dups = sorted({n for n in header if n in seen or seen.add(n)})
    if dups:
        raise ScoringError("The header repeats column names: " + ", ".join(_show(n) for n in dups) + ".")


def _check_exact_header(header: list[str], expected: list[str], limits: Limits) -> None:
    if header == expected or sorted(header) == sorted(expected):
        return
    expected_text = ",".join(expected)
    if len(header) == 1 and len(expected) > 1:
        raise ScoringError(
            f"The header has 1 column {_show(header[0])}; the file must be comma-separated "
            f"with the header {_show(expected_text)}."
        )
    missing = [n for n in expected if n not in header]
    extra = [n for n in header if n not in expected]
    parts = []
    if missing:
        parts.append("missing column(s) " + ", ".join(_show(n) for n in missing[:10]))
    if extra:
        parts.append("unexpected column(s) " + ", ".join(_show(n) for n in extra[:10]))
    hints = []
    for e in extra:
        for m in missing:
            if e.strip() == m:
                hints.append(f"{_show(e)} differs from {_show(m)} by whitespace")
            elif e.strip().lower() == m.lower():
                hints.append(f"{_show(e)} differs from {_show(m)} by letter case")
    msg = "The header must be exactly " + _show(expected_text) + "; " + "; ".join(parts) + "."
    if hints:
        msg += " Column names must match exactly: " + "; ".join(hints[:5]) + "."
    raise ScoringError(msg)


_COLUMN_RE = re.compile(r"In CSV column #(\d+)")
_VALUE_RE = re.compile(r"invalid value '(.*)'", re.S)
_FIELDS_RE = re.compile(r"Expected (\d+) columns, got (\d+): (.*)", re.S)


def _parse(path: Path, header: list[str], types: dict[str, pa.DataType], limits: Limits):
    read_options = pcsv.ReadOptions(
        column_names=header,
        skip_rows=1,
        # pyarrow refuses any row longer than one block, which is exactly the line cap.
        block_size=limits.max_line_bytes,
    )
    convert_options = pcsv.ConvertOptions(
        column_types=types,
        null_values=[""],
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    try:
        return pcsv.read_csv(path, read_options=read_options, convert_options=convert_options)
    except (pa.ArrowInvalid, pa.ArrowException, OSError, ValueError) as exc:
        raise _explain(path, str(exc), header, types, limits) from None


def _explain(
    path: Path, text: str, header: list[str], types: dict[str, pa.DataType], limits: Limits
) -> ScoringError:
    if "straddl" in text or "block" in text:
        return ScoringError(
            f"A line is longer than {limits.max_line_bytes:,} bytes, the most allowed "
            "(check that rows end with line breaks)."
        )
    if "UTF8" in text or "UTF-8" in text:
        where = ""
        col = _COLUMN_RE.search(text)
        if col and int(col.group(1)) < len(header):
            where = f" in column {_show(header[int(col.group(1))])}"
        return ScoringError(
            f"The file contains text that is not valid UTF-8{where}; save it as UTF-8 "
            "(for example 'CSV UTF-8' in Excel)."
        )
    fields = _FIELDS_RE.search(text)
    if fields:
        got, row = fields.group(2), fields.group(3)
        return ScoringError(
            f"A row has {got} fields but the header has {len(header)} columns: "
            f"{_show(row.strip())}. Values containing commas must be quoted."
        )
    col = _COLUMN_RE.search(text)
    value = _VALUE_RE.search(text)
    if col and value and int(col.group(1)) < len(header):
        return _explain_conversion(path, header, int(col.group(1)), value.group(1), limits)
    if "Empty CSV" in text:
        return ScoringError("The file is empty.")
    return ScoringError("The file could not be read as CSV; check that it is a comma-separated text file.")


def _explain_conversion(
    path: Path, header: list[str], index: int, value: str, limits: Limits
) -> ScoringError:
    name = header[index]
    row_note = ""
    # Find where the bad value is with a string re-read of just that column; this only runs on
    # the error path, so the successful path stays a single typed parse.
    with contextlib.suppress(Exception):
        column = pcsv.read_csv(
            path,
            read_options=pcsv.ReadOptions(column_names=header, skip_rows=1, block_size=limits.max_line_bytes),
            convert_options=pcsv.ConvertOptions(
                column_types={n: pa.string() for n in header}, include_columns=[name]
            ),
        ).column(0)
        position = pc.index(column, value).as_py()
        if position is not None and position >= 0:
            row_note = f" on data row {position + 1:,}"
    return ScoringError(f"Column {_show(name)} must contain numbers; found {_show(value)}{row_note}.")
