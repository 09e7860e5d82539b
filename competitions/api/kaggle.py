"""The Kaggle CLI's protocol, so that the official `kaggle` client works against Holdout.

With KAGGLE_API_ENVIRONMENT=LOCALHOST the client (kagglesdk) POSTs every call to
`http://localhost/api/v1/<service>/<Method>` with a camelCase JSON body and reads camelCase JSON
back: enums by name, scores as strings, dates as ISO-8601. Errors are JSON with `code` (the
HTTP status) and `message`, which the CLI prints. Downloads answer with a 302 to a URL the
client then GETs (with the same credentials); submissions are a PUT of the raw bytes to a signed
URL followed by CreateSubmission. See docs/kaggle-cli.md.

Only the competition commands are implemented; anything else answers 501 with a message.
"""

from collections.abc import Callable
from datetime import UTC, datetime

from django.core.exceptions import ValidationError
from django.core.files import File
from django.db.models import Q
from django.http import HttpResponseRedirect
from django.urls import reverse
from rest_framework import exceptions, status
from rest_framework.parsers import JSONParser
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from competitions import selectors, services
from competitions.api import blobs, downloads
from competitions.api.authentication import ApiKeyBasicAuthentication, ApiKeyTokenAuthentication
from competitions.api.permissions import competition_access, require_download, require_participation
from competitions.api_keys import api_key_user
from competitions.forms import SubmissionForm
from competitions.models import Competition, Participation, Submission, User, private_storage

COMPETITIONS = "competitions.CompetitionApiService"
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 200
KAGGLE_STATUS = {
    Submission.Status.QUEUED: "PENDING",
    Submission.Status.SCORING: "PENDING",
    Submission.Status.SCORED: "COMPLETE",
    Submission.Status.FAILED: "ERROR",
}

SUBMISSION_METHODS = frozenset({(COMPETITIONS, "StartSubmissionUpload"), (COMPETITIONS, "CreateSubmission")})


class NotImplementedMethod(exceptions.APIException):
    status_code = status.HTTP_501_NOT_IMPLEMENTED
    default_code = "not_implemented"


def kaggle_exception_handler(exc, context):
    """DRF's handling, reshaped to the Kaggle error body: {"code": status, "message": text}."""
    if isinstance(exc, ValidationError):
        exc = exceptions.ValidationError(" ".join(exc.messages))
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    detail = response.data.get("detail") if isinstance(response.data, dict) else None
    if detail is None:
        detail = "; ".join(_flatten(response.data))
    response.data = {"code": response.status_code, "message": str(detail)}
    return response


def _flatten(data) -> list[str]:
    if isinstance(data, dict):
        return [f"{key}: {text}" for key, value in data.items() for text in _flatten(value)]
    if isinstance(data, list):
        return [text for value in data for text in _flatten(value)]
    return [str(data)]


def kaggle_date(moment: datetime | None) -> str | None:
    """ISO-8601 in UTC with milliseconds and a Z, the form kagglesdk writes and reads."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class KaggleRpc(APIView):
    """`POST /api/v1/<service>/<Method>`: dispatches to the functions in METHODS."""

    # Basic first: a 401 then names the scheme the CLI uses. No session: no CSRF, no cookies.
    authentication_classes = [ApiKeyBasicAuthentication, ApiKeyTokenAuthentication]
    permission_classes = [AllowAny]
    parser_classes = [JSONParser]
    renderer_classes = [JSONRenderer]
    schema = None  # a compatibility layer, documented in docs/kaggle-cli.md, not the REST API

    def get_exception_handler(self):
        return kaggle_exception_handler

    @property
    def throttle_scope(self) -> str:
        """The submission methods share the submissions budget with the web form."""
        call = (self.kwargs.get("service"), self.kwargs.get("method"))
        return "submit" if call in SUBMISSION_METHODS else "api"

    def post(self, request: Request, service: str, method: str):
        handler = METHODS.get((service, method))
        if handler is None:
            raise NotImplementedMethod(
                f"Holdout does not implement {service}/{method}: only the competition commands "
                "(list, files, download, submit, submissions, leaderboard) work against it."
            )
        body = request.data
        if not isinstance(body, dict):
            raise exceptions.ParseError("The request body must be a JSON object.")
        result = handler(request, body)
        return result if not isinstance(result, dict) else Response(result)


# --- Helpers ----------------------------------------------------------------------------------


def _user(request: Request) -> User:
    if not request.user.is_authenticated:
        raise exceptions.NotAuthenticated(
            "Set KAGGLE_USERNAME and KAGGLE_KEY (your Holdout username and API key, from your profile page)."
        )
    return request.user


def _access(request: Request, body: dict):
    slug = str(body.get("competitionName") or "").strip()
    if not slug:
        raise exceptions.ValidationError("Name the competition with -c SLUG.")
    return competition_access(request.user, slug)


def _join_url(request: Request, competition: Competition) -> str:
    return request.build_absolute_uri(reverse("competition_rules", args=[competition.slug]))


def _int(body: dict, key: str, default: int) -> int:
    value = body.get(key)
    if value in (None, ""):
        return default
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: 1e400 arrives as float("inf")
        raise exceptions.ValidationError(f"{key} must be a whole number.") from None


def _page(body: dict, items: list) -> tuple[list, str]:
    """Kaggle pages either by number (page, 1-based) or by an opaque pageToken (an offset here)."""
    size = min(max(_int(body, "pageSize", DEFAULT_PAGE_SIZE), 1), MAX_PAGE_SIZE)
    if body.get("pageToken"):
        offset = max(_int(body, "pageToken", 0), 0)
    else:
        offset = (max(_int(body, "page", 1), 1) - 1) * size
    end = offset + size
    return items[offset:end], (str(end) if end < len(items) else "")


def _absolute(request: Request, name: str, *args) -> str:
    return request.build_absolute_uri(reverse(name, args=args))


# --- Competitions -----------------------------------------------------------------------------


def list_competitions(request: Request, body: dict) -> dict:
    user = request.user
    competitions = Competition.objects.visible_to(user).order_by("deadline_at", "slug")
    group = str(body.get("group") or "")
    joined = set()
    if user.is_authenticated:
        joined = set(Participation.objects.filter(user=user).values_list("competition_id", flat=True))
        if group.endswith("ENTERED"):
            competitions = competitions.filter(pk__in=joined)
        elif group.endswith("HOSTED"):
            competitions = competitions.filter(organizers=user)
    search = str(body.get("search") or "").strip()
    if search:
        competitions = competitions.filter(Q(title__icontains=search) | Q(slug__icontains=search))
    page, next_token = _page(body, list(competitions))
    return {
        "competitions": [_competition(request, c, c.pk in joined) for c in page],
        "nextPageToken": next_token,
    }


def _competition(request: Request, competition: Competition, joined: bool) -> dict:
    return {
        "id": competition.pk,
        # What `-c` takes: the slug (Kaggle sends a URL here; a slug is what learners type).
        "ref": competition.slug,
        "title": competition.title,
        "url": request.build_absolute_uri(competition.get_absolute_url()),
        "description": competition.subtitle,
        "category": "Practice",
        "reward": "Knowledge",
        "deadline": kaggle_date(competition.deadline_at),
        "enabledDate": kaggle_date(competition.start_at),
        "dateCreated": kaggle_date(competition.created_at),
        "teamCount": competition.teams.count(),
        "userHasEntered": joined,
        "maxDailySubmissions": competition.daily_limit,
        "maxTeamSize": 1,
        "evaluationMetric": competition.metric_spec.label,
        "submissionsDisabled": not competition.is_open(),
        "hostName": "holdout",
        "organizationName": "Holdout",
    }


def list_data_files(request: Request, body: dict) -> dict:
    access = _access(request, body)
    files = list(access.competition.data_files.all())
    page, next_token = _page(body, files)
    return {
        "files": [
            {
                "ref": f.name,
                "name": f.name,
                "description": f.description,
                "totalBytes": f.size,
                "url": _absolute(request, "api_data_file_download", access.competition.slug, f.name),
                "creationDate": kaggle_date(f.uploaded_at),
            }
            for f in page
        ],
        "nextPageToken": next_token,
    }


def download_data_files(request: Request, body: dict) -> HttpResponseRedirect:
    _user(request)
    access = _access(request, body)
    require_download(access, _join_url(request, access.competition))
    # The CLI names the saved file <slug>.<extension of this URL's path>, so it must end in .zip.
    return HttpResponseRedirect(_absolute(request, "api_data_zip", access.competition.slug))


def download_data_file(request: Request, body: dict) -> HttpResponseRedirect:
    _user(request)
    access = _access(request, body)
    require_download(access, _join_url(request, access.competition))
    name = str(body.get("fileName") or "")
    if not access.competition.data_files.filter(name=name).exists():
        raise exceptions.NotFound(f"No data file named {name!r} in {access.competition.slug}.")
    # The CLI saves the file under this URL's last path segment.
    return HttpResponseRedirect(_absolute(request, "api_data_file_download", access.competition.slug, name))


# --- Submitting -------------------------------------------------------------------------------


def start_submission_upload(request: Request, body: dict) -> dict:
    user = _user(request)
    access = _access(request, body)
    require_participation(access, _join_url(request, access.competition))
    size = _int(body, "contentLength", 0)
    if size > blobs.upload_limit(access.competition):
        raise exceptions.ValidationError(blobs.too_large_message(access.competition, size))
    file_name = str(body.get("fileName") or "submission.csv")
    token = blobs.blob_token_create(user=user, competition=access.competition, file_name=file_name)
    return {"token": token, "createUrl": _absolute(request, "kaggle_blob_upload", token)}


def create_submission(request: Request, body: dict) -> dict:
    user = _user(request)
    access = _access(request, body)
    competition = access.competition
    token = blobs.blob_token_read(str(body.get("blobFileTokens") or ""), max_age=blobs.BLOB_MAX_AGE)
    if token.user_id != user.pk or token.competition_id != competition.pk:
        raise exceptions.PermissionDenied("This upload belongs to another user or competition.")
    if not blobs.blob_exists(token):
        raise exceptions.ValidationError("The uploaded file was not found (already used?). Submit again.")
    description = str(body.get("submissionDescription") or "")
    try:
        with private_storage().open(token.path, "rb") as fh:
            form = SubmissionForm(
                competition,
                data={"description": description[:500]},
                files={"file": File(fh, name=token.file_name)},
            )
            if not form.is_valid():
                raise exceptions.ValidationError(
                    " ".join(message for errors in form.errors.values() for message in errors)
                )
            submission = services.submission_create(
                user=user,
                competition=competition,
                uploaded=form.cleaned_data["file"],
                description=form.cleaned_data["description"],
            )
    finally:
        # Used or refused, the blob has served: a retry uploads again.
        blobs.blob_delete(token)
    return {"message": f"Successfully submitted to {competition.title}", "ref": submission.pk}


def get_submission_limits(request: Request, body: dict) -> dict:
    _user(request)
    participation = _access(request, body).participation
    if participation is None:
        return {"numToday": 0, "numTotal": 0, "numAllowedNow": 0, "limitedByTotal": False}
    quota = selectors.submission_quota(participation.team)
    limited_by_total = quota.total_left is not None and quota.total_left < quota.daily_left
    allowed = quota.total_left if limited_by_total else quota.daily_left
    return {
        "numToday": quota.used_today,
        "numTotal": quota.used_total,
        "numAllowedNow": allowed if quota.can_submit else 0,
        "limitedByTotal": limited_by_total,
    }


def _submission(request: Request, submission: Submission) -> dict:
    competition = submission.competition
    private = submission.private_score_visible()
    return {
        "ref": submission.pk,
        "totalBytes": submission.size,
        "date": kaggle_date(submission.created_at),
        "description": submission.description,
        "errorDescription": submission.error_message,
        "fileName": submission.original_name,
        "publicScore": competition.format_score(submission.public_score),
        # Empty until the deadline, whatever the submission's state: never a hint of the hidden rows.
        "privateScore": competition.format_score(submission.private_score) if private else "",
        "status": KAGGLE_STATUS[submission.status],
        "submittedBy": submission.submitted_by.username if submission.submitted_by else "",
        "teamName": submission.team.name,
        "url": _absolute(request, "competition_submissions", competition.slug),
    }


def get_submission(request: Request, body: dict) -> dict:
    user = _user(request)
    submission = (
        Submission.objects.select_related("competition", "team", "submitted_by")
        .filter(pk=_int(body, "ref", 0), team__memberships__user=user)
        .first()
    )
    if submission is None:
        raise exceptions.NotFound("No such submission in your teams.")
    return _submission(request, submission)


def list_submissions(request: Request, body: dict) -> dict:
    _user(request)
    participation = _access(request, body).participation
    if participation is None:
        return {"submissions": [], "nextPageToken": ""}
    submissions = list(selectors.team_submissions(participation.team).select_related("competition", "team"))
    page, next_token = _page(body, submissions)
    return {"submissions": [_submission(request, s) for s in page], "nextPageToken": next_token}


# --- Leaderboard ------------------------------------------------------------------------------


def _board(competition: Competition, body: dict):
    """Like Kaggle: the private board once the competition has ended, unless overridePublic."""
    if competition.has_ended() and not body.get("overridePublic"):
        return "private", selectors.private_leaderboard(competition) or []
    return "public", selectors.public_leaderboard(competition)


def get_leaderboard(request: Request, body: dict) -> dict:
    competition = _access(request, body).competition
    _, rows = _board(competition, body)
    page, next_token = _page(body, rows)
    return {
        "submissions": [
            {
                "teamId": row.team_id,
                "teamName": row.team_name,
                "submissionDate": kaggle_date(row.last_submitted_at),
                "score": competition.format_score(row.score),
            }
            for row in page
        ],
        "nextPageToken": next_token,
    }


def download_leaderboard(request: Request, body: dict):
    competition = _access(request, body).competition
    board, rows = _board(competition, body)
    return downloads.leaderboard_zip_response(competition, board, rows)


# --- Tokens -----------------------------------------------------------------------------------


def introspect_token(request: Request, body: dict) -> dict:
    """Lets KAGGLE_API_TOKEN=<API key> work on its own: the CLI asks whose token it is first."""
    user = api_key_user(str(body.get("token") or ""))
    if user is None:
        return {"active": False}
    return {"active": True, "username": user.get_username(), "userId": user.pk}


METHODS: dict[tuple[str, str], Callable] = {
    (COMPETITIONS, "ListCompetitions"): list_competitions,
    (COMPETITIONS, "ListDataFiles"): list_data_files,
    (COMPETITIONS, "DownloadDataFiles"): download_data_files,
    (COMPETITIONS, "DownloadDataFile"): download_data_file,
    (COMPETITIONS, "StartSubmissionUpload"): start_submission_upload,
    (COMPETITIONS, "CreateSubmission"): create_submission,
    (COMPETITIONS, "GetSubmissionLimits"): get_submission_limits,
    (COMPETITIONS, "GetSubmission"): get_submission,
    (COMPETITIONS, "ListSubmissions"): list_submissions,
    (COMPETITIONS, "GetLeaderboard"): get_leaderboard,
    (COMPETITIONS, "DownloadLeaderboard"): download_leaderboard,
    ("security.OAuthService", "IntrospectToken"): introspect_token,
}
