"""File responses shared by the REST API and the Kaggle protocol: data files, the data zip and
the leaderboard CSV."""

import io
import tempfile
import zipfile
from datetime import UTC
from pathlib import PurePosixPath

from django.http import FileResponse
from django.utils import timezone
from django.utils.http import http_date

from competitions.csvexport import SafeWriter
from competitions.models import Competition, DataFile
from competitions.selectors import LeaderboardRow

# Data files are only ever sent as downloads; a content type a browser will not render keeps an
# organizer's upload from becoming a page on our origin.
CONTENT_TYPES = {".csv": "text/csv", ".zip": "application/zip", ".gz": "application/gzip"}
# Zips of the data are built in memory up to this size, then on disk.
SPOOL_BYTES = 8 * 1024 * 1024
COPY_CHUNK = 1024 * 1024


def _attachment(fileobj, filename: str, content_type: str, last_modified=None) -> FileResponse:
    response = FileResponse(fileobj, as_attachment=True, filename=filename, content_type=content_type)
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    if last_modified is not None:
        # RFC 1123 (the Kaggle CLI parses it with "%a, %d %b %Y %H:%M:%S %Z").
        response["Last-Modified"] = http_date(last_modified.timestamp())
    return response


def data_file_response(data_file: DataFile) -> FileResponse:
    suffix = PurePosixPath(data_file.name).suffix.lower()
    content_type = CONTENT_TYPES.get(suffix, "application/octet-stream")
    return _attachment(data_file.file.open("rb"), data_file.name, content_type, data_file.uploaded_at)


def data_zip_response(competition: Competition) -> FileResponse:
    """All of a competition's data files in one zip, built for this request.

    A spooled temporary file keeps small data sets in memory and large ones on disk; the file
    is removed when the response is closed.
    """
    files = list(competition.data_files.all())
    # Not a context manager: the response closes (and so deletes) the file once it is sent.
    archive = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
        for data_file in files:
            info = zipfile.ZipInfo(data_file.name, date_time=_zip_time(data_file.uploaded_at))
            info.compress_type = zipfile.ZIP_DEFLATED
            with data_file.file.open("rb") as src, zf.open(info, "w", force_zip64=True) as dst:
                while chunk := src.read(COPY_CHUNK):
                    dst.write(chunk)
    archive.seek(0)
    newest = max((f.uploaded_at for f in files), default=None)
    return _attachment(archive, f"{competition.slug}.zip", "application/zip", newest)


def _zip_time(moment) -> tuple[int, int, int, int, int, int]:
    moment = moment.astimezone(UTC) if timezone.is_aware(moment) else moment
    return (max(moment.year, 1980), moment.month, moment.day, moment.hour, moment.minute, moment.second)


def leaderboard_csv(competition: Competition, rows: list[LeaderboardRow]) -> bytes:
    """Kaggle's leaderboard CSV columns, so scripts written for Kaggle read it unchanged."""
    out = io.StringIO()
    writer = SafeWriter(out, lineterminator="\n")
    writer.writerow(
        [
            "Rank",
            "TeamId",
            "TeamName",
            "LastSubmissionDate",
            "Score",
            "SubmissionCount",
            "TeamMemberUserNames",
        ]
    )
    for row in rows:
        writer.writerow(
            [
                row.rank,
                row.team_id,
                row.team_name,
                row.last_submitted_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
                competition.format_score(row.score),
                row.entries,
                " ".join(row.members),
            ]
        )
    return out.getvalue().encode("utf-8")


def leaderboard_zip_response(
    competition: Competition, board: str, rows: list[LeaderboardRow]
) -> FileResponse:
    stamp = timezone.now().strftime("%Y-%m-%d")
    name = f"{competition.slug}-{board}leaderboard-{stamp}.csv"
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(name, leaderboard_csv(competition, rows))
    archive.seek(0)
    return _attachment(archive, f"{competition.slug}.zip", "application/zip")
