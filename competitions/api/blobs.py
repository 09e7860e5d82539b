"""Blob uploads for the Kaggle CLI: a signed, short-lived URL that accepts one file's bytes.

The CLI asks for an upload URL (StartSubmissionUpload), PUTs the raw bytes there without any
credentials, then creates the submission with the token it was given (CreateSubmission). The
URL therefore carries its own authority: a TimestampSigner token bound to the user, the
competition and a generated blob name. Blobs live in private storage under that generated name
until the submission is created from them (or they are swept as stale).
"""

import tempfile
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.core.files import File
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from competitions import ratelimit
from competitions.models import Competition, User, private_storage

SALT = "holdout.kaggle.blob-upload"
# The PUT must start within this long of StartSubmissionUpload...
UPLOAD_URL_MAX_AGE = timedelta(minutes=15)
# ...and CreateSubmission must follow within this long (a large upload on a slow line).
BLOB_MAX_AGE = timedelta(hours=2)
BLOB_DIR = "kaggle-uploads"
CHUNK = 256 * 1024


class UploadError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class BlobToken:
    user_id: int
    competition_id: int
    blob: str
    file_name: str

    @property
    def path(self) -> str:
        return f"{BLOB_DIR}/{self.blob}"


def blob_token_create(*, user, competition: Competition, file_name: str) -> str:
    payload = {"u": user.pk, "c": competition.pk, "b": uuid.uuid4().hex, "n": file_name[:255]}
    return signing.TimestampSigner(salt=SALT).sign_object(payload, compress=True)


def blob_token_read(token: str, *, max_age: timedelta) -> BlobToken:
    """Verify a token's signature and age; UploadError(403) when it is forged or stale."""
    try:
        data = signing.TimestampSigner(salt=SALT).unsign_object(token, max_age=max_age)
        return BlobToken(int(data["u"]), int(data["c"]), str(data["b"]), str(data["n"]))
    except signing.SignatureExpired:
        raise UploadError(403, "This upload link has expired. Run the submit command again.") from None
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise UploadError(403, "This upload link is not valid. Run the submit command again.") from None


def upload_limit(competition: Competition) -> int:
    return min(competition.max_upload_bytes, settings.HOLDOUT_MAX_UPLOAD_BYTES)


def too_large_message(competition: Competition, size: int) -> str:
    return (
        f"The file is {size / 1024 / 1024:.1f} MB; this challenge accepts at most "
        f"{upload_limit(competition) / 1024 / 1024:.0f} MB."
    )


def blob_store(token: BlobToken, competition: Competition, stream, content_length: int | None) -> int:
    """Copy a request body into private storage, refusing it once it passes the size cap.

    The body is read in chunks into a temporary file, so neither a large file nor a client that
    lies about Content-Length can fill the memory; only a complete, in-limit body is stored.
    """
    limit = upload_limit(competition)
    if content_length is None:
        raise UploadError(411, "Send the file with a Content-Length header.")
    if content_length > limit:
        raise UploadError(413, too_large_message(competition, content_length))
    storage = private_storage()
    with tempfile.TemporaryFile(prefix="holdout-blob-") as tmp:
        size = 0
        while chunk := stream.read(CHUNK):
            size += len(chunk)
            if size > limit:
                raise UploadError(413, too_large_message(competition, size))
            tmp.write(chunk)
        tmp.seek(0)
        # A retried PUT replaces the earlier bytes instead of leaving a renamed copy behind.
        storage.delete(token.path)
        saved = storage.save(token.path, File(tmp))
    if saved != token.path:
        storage.delete(saved)
        raise UploadError(409, "The upload could not be stored. Run the submit command again.")
    return size


def blob_exists(token: BlobToken) -> bool:
    return private_storage().exists(token.path)


def blob_delete(token: BlobToken) -> None:
    private_storage().delete(token.path)


def stale_blobs_delete(now=None) -> int:
    """Remove uploads that no submission was created from. Meant for a periodic task."""
    storage = private_storage()
    cutoff = (now or timezone.now()) - BLOB_MAX_AGE
    try:
        _, names = storage.listdir(BLOB_DIR)
    except FileNotFoundError:
        return 0
    removed = 0
    for name in names:
        path = f"{BLOB_DIR}/{name}"
        if storage.get_modified_time(path) < cutoff:
            storage.delete(path)
            removed += 1
    return removed


# --- The upload URL ---------------------------------------------------------------------------


def _blob_owner(request, token: str) -> str | None:
    """The CLI sends no credentials here: count the upload against the user the URL was issued
    to (its signature proves it), or, for a forged or stale URL, against the address."""
    try:
        return ratelimit.user_identity(blob_token_read(token, max_age=UPLOAD_URL_MAX_AGE).user_id)
    except UploadError:
        return None


@csrf_exempt  # no cookies are involved: the signed token in the URL is the authority
@ratelimit.rate_limited("submit", who=_blob_owner, json=True)
@require_http_methods(["PUT"])
def blob_upload(request, token: str) -> JsonResponse:
    """Receive the raw bytes of a submission (the CLI's PUT to createUrl, sent without credentials)."""
    try:
        blob = blob_token_read(token, max_age=UPLOAD_URL_MAX_AGE)
        competition = Competition.objects.filter(pk=blob.competition_id).first()
        if competition is None or not User.objects.filter(pk=blob.user_id, is_active=True).exists():
            raise UploadError(403, "This upload link is no longer valid.")
        length = request.META.get("CONTENT_LENGTH")
        size = blob_store(blob, competition, request, int(length) if length else None)
    except UploadError as exc:
        return JsonResponse({"code": exc.status, "message": exc.message}, status=exc.status)
    except ValueError:
        return JsonResponse({"code": 400, "message": "Invalid Content-Length."}, status=400)
    return JsonResponse({"size": size}, status=201)
