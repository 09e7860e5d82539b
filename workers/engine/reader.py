"""Read an uploaded CSV (plain, gzip or single-file zip) into a pyarrow Table, safely.

Everything that can go wrong becomes a ScoringError whose message a learner can act on; pyarrow,
zlib and zipfile exceptions never escape. containers.py gets at the CSV bytes (inflating
compressed uploads under a size cap) and limits.py caps the rows while they stream, before
anything here parses them.
"""

from __future__ import annotations

import contextlib
import csv
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from .containers import plain_csv
from .errors import ScoringError
from .errors import show as _show
from .limits import DEFAULT_LIMITS, Limits, too_many_rows


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
    with plain_csv(path, limits) as plain:
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
        raise too_many_rows(limits)
    return table


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
