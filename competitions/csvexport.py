"""CSV exports that are safe to open in a spreadsheet.

Team names, descriptions and file names are chosen by learners. A cell starting with =, +, -,
@, a tab or a carriage return is read as a formula by Excel, LibreOffice and Google Sheets, so
an organizer opening a leaderboard export could run one. Such cells get a leading apostrophe
(OWASP's advice); numbers, including formatted negative scores, are left as they are.
"""

import csv
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not _is_number(value):
        return "'" + value
    return value


def _is_number(text: str) -> bool:
    # A formatted negative score ("-0.12500") is data, not a formula.
    try:
        float(text)
    except ValueError:
        return False
    return True


class SafeWriter:
    """csv.writer with every text cell passed through safe_cell."""

    def __init__(self, out, **kwargs) -> None:
        self._writer = csv.writer(out, **kwargs)

    def writerow(self, row) -> None:
        self._writer.writerow([safe_cell(cell) for cell in row])

    def writerows(self, rows) -> None:
        for row in rows:
            self.writerow(row)
