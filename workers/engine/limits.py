"""How much of an upload the engine reads: sizes, columns, line lengths, and the row cap.

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

from dataclasses import dataclass

from .errors import ScoringError

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
# Solutions are uploaded by trusted organizers, but still streamed through the same safe
# reader; they may legitimately be larger than a learner's submission.
SOLUTION_LIMITS = Limits(max_bytes=2048 * MiB, max_decompressed_bytes=4096 * MiB, max_rows=50_000_000)


def mb(n: int) -> str:
    return f"{n / MiB:g} MB"


def too_many_rows(limits: Limits) -> ScoringError:
    if limits.expected_rows is not None and limits.row_cap < limits.max_rows:
        return ScoringError(
            f"The file has more than {limits.row_cap:,} rows; expected {limits.expected_rows:,}, one per id."
        )
    return ScoringError(
        f"The file has more than {limits.row_cap:,} rows; at most {limits.max_rows:,} are allowed."
    )


class LineCount:
    """Counts line breaks as chunks stream past and refuses the file once the data lines (all
    but the header) exceed the row cap: memchr-speed, no parsing."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.lines = 0

    def add(self, chunk: bytes) -> None:
        self.lines += chunk.count(b"\n")
        if self.lines - 1 > self.limits.row_cap:
            raise too_many_rows(self.limits)
