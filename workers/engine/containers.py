"""Get at the CSV inside an upload: plain, gzip or single-file zip, refused safely otherwise.

Compressed uploads are inflated by streaming into a temporary file with a running size cap, so
a compression bomb is stopped after at most ``max_decompressed_bytes`` have been written, never
materialised in memory; the row cap (limits.py) is enforced while the bytes stream past.
"""

from __future__ import annotations

import contextlib
import gzip
import re
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from .errors import ScoringError
from .errors import show as _show
from .limits import Limits, LineCount, MiB, mb
from .sniff import read_head, sniff

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


def _count_lines(path: Path, limits: Limits) -> None:
    counter = LineCount(limits)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            counter.add(chunk)


@contextlib.contextmanager
def plain_csv(path: Path, limits: Limits) -> Iterator[Path]:
    """Yield a path to the uncompressed CSV bytes, decompressing into a temp dir if needed."""
    try:
        size, head = read_head(path)
    except OSError:
        raise ScoringError("The uploaded file could not be opened.") from None
    if size == 0:
        raise ScoringError("The file is empty.")
    if size > limits.max_bytes:
        raise ScoringError(f"The file is {mb(size)}; the largest allowed upload is {mb(limits.max_bytes)}.")
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
    lines = LineCount(limits)
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
                    f"The decompressed size exceeds {mb(cap)}, the most allowed; upload a smaller file."
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
