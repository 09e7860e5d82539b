"""Tell file formats apart by their first bytes (magic numbers), for every upload the workers read.

One table serves both the CSV reader (compressed CSVs, and formats uploaded by mistake) and the
model sandbox (a ``.keras`` model is a zip; HDF5 files and pickles are refused), so "what a zip
looks like" is decided in one place. Only the first ``HEAD_BYTES`` bytes are ever needed.
"""

from __future__ import annotations

from pathlib import Path

HEAD_BYTES = 8

# format -> the prefixes that mark it. Local file header, empty archive, and the spanned-archive
# marker some tools write before the first local header.
MAGICS: dict[str, tuple[bytes, ...]] = {
    "gzip": (b"\x1f\x8b",),
    "zip": (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08"),
    "bzip2": (b"BZh",),
    "xz": (b"\xfd7zXZ\x00",),
    "7z": (b"7z\xbc\xaf\x27\x1c",),
    "rar": (b"Rar!",),
    "parquet": (b"PAR1",),
    "xls": (b"\xd0\xcf\x11\xe0",),
    "pdf": (b"%PDF",),
    "hdf5": (b"\x89HDF\r\n\x1a\n",),
    # Protocols 2 to 5 start with PROTO (0x80) and the protocol number.
    "pickle": (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05"),
}


def sniff(head: bytes) -> str | None:
    """The format whose magic number ``head`` starts with, or None (plain text, or unknown)."""
    for name, magics in MAGICS.items():
        if head.startswith(magics):
            return name
    return None


def read_head(path: Path) -> tuple[int, bytes]:
    """The file's size and its first HEAD_BYTES bytes; raises OSError if it cannot be read."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        return size, f.read(HEAD_BYTES)
