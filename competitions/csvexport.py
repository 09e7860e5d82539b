"""CSV exports that are safe to open in a spreadsheet.

Team names, descriptions and file names are chosen by learners. A cell starting with =, +, -,
@, a tab or a carriage return is read as a formula by Excel, LibreOffice and Google Sheets, so
an organizer opening a leaderboard export could run one. Such cells get a leading apostrophe
(OWASP's advice); numbers, including formatted negative scores, are left as they are.
"""

import csv
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.http import HttpResponse

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    if not isinstance(value, str | int | float | Decimal | datetime | date | None):
        # Anything else (a User, a lazy string…) is written as its text: check that text.
        value = str(value)
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


def csv_attachment(filename: str) -> tuple[HttpResponse, SafeWriter]:
    """A CSV download response and a formula-safe writer into it."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response, SafeWriter(response)


def write_leaderboard(writer: SafeWriter, competition, rows, *, submission_ids: bool = False) -> None:
    """Holdout's leaderboard export; organizers' copy also names each row's submission."""
    writer.writerow(
        ["rank", "team", "members", "score", "entries", "last_submission_utc"]
        + (["submission_id"] if submission_ids else [])
    )
    for row in rows:
        writer.writerow(
            [
                row.rank or "baseline",
                row.team_name,
                " ".join(row.members),
                competition.format_score(row.score),
                row.entries,
                row.last_submitted_at.isoformat(),
            ]
            + ([row.submission_id] if submission_ids else [])
        )


SUBMISSION_EXPORT_COLUMNS = [
    "competition",
    "submission_id",
    "team",
    "submitted_by",
    "created_at_utc",
    "status",
    "public_score",
    "private_score",
    "late",
    "final",
    "baseline",
    "disqualified_reason",
    "error",
    "description",
]


def write_submissions(writer: SafeWriter, submissions) -> None:
    """The organizers' export of every submission with both full scores (admin only)."""
    writer.writerow(SUBMISSION_EXPORT_COLUMNS)
    for sub in submissions:
        writer.writerow(
            [
                sub.competition.slug,
                sub.pk,
                sub.team.name,
                sub.submitted_by,
                sub.created_at.isoformat(),
                sub.status,
                sub.public_score,
                sub.private_score,
                sub.is_late,
                sub.is_final,
                sub.is_baseline,
                sub.disqualified_reason,
                sub.error_message,
                sub.description,
            ]
        )
