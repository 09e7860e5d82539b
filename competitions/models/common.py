"""Storage, file names and small helpers the models share (upload paths are referenced by
migrations through ``competitions.models``)."""

import secrets
import unicodedata
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from django.core.files.storage import storages

if TYPE_CHECKING:
    from .competition import Competition, DataFile
    from .submissions import Submission


def private_storage():
    """Solutions and submissions: a storage with no URL, never served by any view."""
    return storages["private"]


def _data_file_path(instance: "DataFile", filename: str) -> str:
    return f"data/{instance.competition.slug}/{uuid.uuid4().hex}"


def _solution_path(instance: "Competition", filename: str) -> str:
    return f"solutions/{instance.slug}/{uuid.uuid4().hex}.csv"


def _features_path(instance: "Competition", filename: str) -> str:
    suffix = ".npz" if filename.lower().endswith(".npz") else ".csv"
    return f"features/{instance.slug}/{uuid.uuid4().hex}{suffix}"


def _invite_code() -> str:
    return secrets.token_urlsafe(12)


def _prepared_solution_path(instance: "Competition", filename: str) -> str:
    return f"solutions/{instance.slug}/{uuid.uuid4().hex}.parquet"


def _submission_path(instance: "Submission", filename: str) -> str:
    # The learner's file name is kept in original_name; on disk it is only a random name.
    return f"submissions/{instance.competition_id}/{uuid.uuid4().hex}"


def utc_day_start(moment: datetime) -> datetime:
    """Daily limits count per UTC day, whatever the server's or the learner's time zone."""
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


MAX_FILE_NAME_LENGTH = 100


def file_name_problem(name: str) -> str | None:
    """Why `name` is not a plain file name for a download, or None.

    Data-file names appear in URLs (/data/<name>), in Content-Disposition headers, as zip
    members and on pages, so they are single, printable path segments without markup.
    """
    if not name or not name.strip():
        return "A file name is required."
    if len(name) > MAX_FILE_NAME_LENGTH:
        return f"A file name may have at most {MAX_FILE_NAME_LENGTH} characters."
    if name != name.strip():
        return "A file name may not start or end with spaces."
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in name):
        return "A file name may not contain line breaks or other control characters."
    if "/" in name or "\\" in name:
        return "A file name may not contain / or \\; use a plain name such as train.csv."
    if ".." in name or name.startswith("."):
        return "A file name may not start with a dot or contain “..”."
    if any(ch in name for ch in '<>"'):
        return "A file name may not contain <, > or quotes."
    return None
