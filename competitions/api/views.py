"""The REST API: thin views over the same services and selectors as the pages."""

from django.core.exceptions import ValidationError
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, generics, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from competitions import selectors, services
from competitions.api import downloads
from competitions.api.exceptions import BadRequest, bad_request
from competitions.api.permissions import Access, competition_access, require_download, require_participation
from competitions.api.serializers import (
    CompetitionDetailSerializer,
    CompetitionSerializer,
    DataFileSerializer,
    ErrorSerializer,
    FinalSelectionSerializer,
    LeaderboardSerializer,
    QuotaSerializer,
    SubmissionCreateSerializer,
    SubmissionSerializer,
)
from competitions.forms import SubmissionForm
from competitions.models import Competition, Participation, Submission
from competitions.upload_limits import add_upload_errors

ERRORS = {
    401: OpenApiResponse(ErrorSerializer, description="No or invalid credentials."),
    403: OpenApiResponse(ErrorSerializer, description="Not allowed (e.g. the competition was not joined)."),
    404: OpenApiResponse(ErrorSerializer, description="No such competition, or not visible to the caller."),
}
FILE_RESPONSE = OpenApiResponse(OpenApiTypes.BINARY, description="The file, as an attachment.")


def join_url(request: Request, competition: Competition) -> str:
    return request.build_absolute_uri(reverse("competition_rules", args=[competition.slug]))


def _joined_ids(user) -> set[int]:
    if not user.is_authenticated:
        return set()
    return set(Participation.objects.filter(user=user).values_list("competition_id", flat=True))


class CompetitionList(generics.ListAPIView):
    """Competitions visible to the caller: published ones, plus drafts they organize."""

    serializer_class = CompetitionSerializer
    permission_classes = [AllowAny]

    def get_queryset(self):
        return Competition.objects.visible_to(self.request.user).order_by("deadline_at", "slug")

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "joined_ids": _joined_ids(self.request.user)}


class CompetitionDetail(APIView):
    permission_classes = [AllowAny]

    @extend_schema(responses={200: CompetitionDetailSerializer, 404: ERRORS[404]})
    def get(self, request: Request, slug: str) -> Response:
        access = competition_access(request.user, slug)
        context = {
            "request": request,
            "joined_ids": {access.competition.pk} if access.participation else set(),
        }
        return Response(CompetitionDetailSerializer(access.competition, context=context).data)


class DataFileList(APIView):
    """The data files' names and sizes: visible to anyone who can see the competition."""

    permission_classes = [AllowAny]

    @extend_schema(responses={200: DataFileSerializer(many=True), 404: ERRORS[404]})
    def get(self, request: Request, slug: str) -> Response:
        access = competition_access(request.user, slug)
        files = access.competition.data_files.select_related("competition")
        return Response(DataFileSerializer(files, many=True, context={"request": request}).data)


class DataFileDownload(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses={(200, "*/*"): FILE_RESPONSE, **ERRORS})
    def get(self, request: Request, slug: str, name: str):
        access = _downloadable(request, slug)
        data_file = access.competition.data_files.filter(name=name).first()
        if data_file is None:
            raise exceptions.NotFound("No data file with this name in this competition.")
        return downloads.data_file_response(data_file)


class DataZipDownload(APIView):
    """All data files of the competition in one zip (what `kaggle competitions download` gets)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="competitions_data_zip", responses={(200, "application/zip"): FILE_RESPONSE, **ERRORS}
    )
    def get(self, request: Request, slug: str):
        return downloads.data_zip_response(_downloadable(request, slug).competition)


def _downloadable(request: Request, slug: str) -> Access:
    access = competition_access(request.user, slug)
    require_download(access, join_url(request, access.competition))
    return access


class SubmissionListCreate(APIView):
    """The caller's team's submissions (newest first); POST a file to submit."""

    permission_classes = [IsAuthenticated]
    parser_classes = [MultiPartParser, FormParser]
    throttle_scope = "submit"  # POSTs share the submissions budget with the web form

    @extend_schema(responses={200: SubmissionSerializer(many=True), **ERRORS})
    def get(self, request: Request, slug: str) -> Response:
        access = competition_access(request.user, slug)
        if access.participation is None:
            return Response([])
        submissions = selectors.team_submissions(access.participation.team).select_related(
            "competition", "team"
        )
        return Response(SubmissionSerializer(submissions, many=True).data)

    @extend_schema(
        request={"multipart/form-data": SubmissionCreateSerializer},
        responses={
            201: SubmissionSerializer,
            400: OpenApiResponse(ErrorSerializer, description="Refused: limits, deadline, file checks."),
            **ERRORS,
        },
    )
    def post(self, request: Request, slug: str) -> Response:
        access = competition_access(request.user, slug)
        require_participation(access, join_url(request, access.competition))
        form = SubmissionForm(access.competition, data=request.data, files=request.FILES)
        # A file past the site-wide cap was dropped while streaming (competitions.upload_limits); say so.
        add_upload_errors(request._request, form)
        if not form.is_valid():
            raise BadRequest(" ".join(message for errors in form.errors.values() for message in errors))
        try:
            submission = services.submission_create(
                user=request.user,
                competition=access.competition,
                uploaded=form.cleaned_data["file"],
                description=form.cleaned_data["description"],
            )
        except ValidationError as exc:
            raise bad_request(exc) from None
        # The service has committed (and queued scoring); an in-process scorer may already be done.
        submission.refresh_from_db()
        return Response(SubmissionSerializer(submission).data, status=status.HTTP_201_CREATED)


class SubmissionDetail(APIView):
    """One of the caller's team's submissions; any other submission is a 404."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: SubmissionSerializer, **ERRORS})
    def get(self, request: Request, slug: str, pk: int) -> Response:
        access = competition_access(request.user, slug)
        submission = None
        if access.participation is not None:
            submission = (
                Submission.objects.select_related("competition", "team", "submitted_by")
                .filter(pk=pk, team=access.participation.team)
                .first()
            )
        if submission is None:
            raise exceptions.NotFound("No such submission in your team.")
        return Response(SubmissionSerializer(submission).data)

    @extend_schema(request=FinalSelectionSerializer, responses={200: SubmissionSerializer, **ERRORS})
    def patch(self, request: Request, slug: str, pk: int) -> Response:
        """Select or unselect the submission as one of the team's final submissions."""
        access = competition_access(request.user, slug)
        participation = require_participation(access, join_url(request, access.competition))
        submission = Submission.objects.filter(pk=pk, team=participation.team).first()
        if submission is None:
            raise exceptions.NotFound("No such submission in your team.")
        body = FinalSelectionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            submission = services.submission_set_final(
                user=request.user, submission=submission, selected=body.validated_data["is_final"]
            )
        except ValidationError as exc:
            raise bad_request(exc) from None
        return Response(SubmissionSerializer(submission).data)


class Quota(APIView):
    """How many submissions the caller's team has left."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: QuotaSerializer, **ERRORS})
    def get(self, request: Request, slug: str) -> Response:
        access = competition_access(request.user, slug)
        participation = require_participation(access, join_url(request, access.competition))
        return Response(QuotaSerializer(selectors.submission_quota(participation.team)).data)


class Leaderboard(APIView):
    """The public board; after the deadline the private (final) one, which is the default then."""

    permission_classes = [AllowAny]

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "board",
                str,
                enum=["public", "private"],
                description="Defaults to private after the deadline, public before.",
            )
        ],
        responses={200: LeaderboardSerializer, 403: ERRORS[403], 404: ERRORS[404]},
    )
    def get(self, request: Request, slug: str) -> Response:
        competition = competition_access(request.user, slug).competition
        ended = competition.has_ended()
        board = request.query_params.get("board") or ("private" if ended else "public")
        if board not in ("public", "private"):
            raise BadRequest("board must be 'public' or 'private'.")
        rows = selectors.private_leaderboard(competition) if board == "private" else None
        if board == "private" and rows is None:
            raise exceptions.PermissionDenied("The private leaderboard is revealed at the deadline.")
        if board == "public":
            rows = selectors.public_leaderboard(competition)
        data = {
            "board": board,
            "final": board == "private",
            "higher_is_better": competition.higher_is_better,
            "rows": rows,
        }
        return Response(LeaderboardSerializer(data).data)


class NotFoundView(APIView):
    """Unknown paths under /api/ answer in JSON like the rest of the API."""

    permission_classes = [AllowAny]
    schema = None

    def dispatch_not_found(self, request: Request, *args, **kwargs) -> Response:
        raise exceptions.NotFound("No such API endpoint. See /api/docs/.")

    get = post = put = patch = delete = dispatch_not_found
