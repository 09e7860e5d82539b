"""What the REST API shows. Scores a caller may not see are null, never computed from hidden data."""

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from competitions.models import Competition, DataFile, Submission


class CompetitionSerializer(serializers.ModelSerializer):
    phase = serializers.ChoiceField(choices=["upcoming", "active", "closed"], read_only=True)
    metric_label = serializers.SerializerMethodField()
    higher_is_better = serializers.BooleanField(read_only=True)
    submission_columns = serializers.ListField(child=serializers.CharField(), read_only=True)
    joined = serializers.SerializerMethodField(
        help_text="Whether the caller has joined (accepted the rules)."
    )
    url = serializers.SerializerMethodField(help_text="The competition's web page.")

    class Meta:
        model = Competition
        fields = [
            "slug", "title", "subtitle", "kind", "state", "phase", "start_at", "deadline_at",
            "metric", "metric_label", "higher_is_better", "id_column", "target_column",
            "submission_columns", "daily_limit", "total_limit", "max_upload_mb", "score_precision",
            "joined", "url",
        ]  # fmt: skip
        read_only_fields = fields

    def get_metric_label(self, competition: Competition) -> str:
        return competition.metric_spec.label

    def get_joined(self, competition: Competition) -> bool:
        return competition.pk in self.context.get("joined_ids", ())

    def get_url(self, competition: Competition) -> str:
        return self.context["request"].build_absolute_uri(competition.get_absolute_url())


class CompetitionDetailSerializer(CompetitionSerializer):
    class Meta(CompetitionSerializer.Meta):
        fields = [*CompetitionSerializer.Meta.fields, "overview", "evaluation", "rules", "data_description"]
        read_only_fields = fields


class DataFileSerializer(serializers.ModelSerializer):
    download_url = serializers.SerializerMethodField(
        help_text="Downloads need the caller to have joined the competition (or to organize it)."
    )

    class Meta:
        model = DataFile
        fields = ["name", "description", "size", "uploaded_at", "download_url"]
        read_only_fields = fields

    def get_download_url(self, data_file: DataFile) -> str:
        path = reverse("api_data_file_download", args=[data_file.competition.slug, data_file.name])
        return self.context["request"].build_absolute_uri(path)


class SubmissionSerializer(serializers.ModelSerializer):
    competition = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    team = serializers.CharField(source="team.name", read_only=True)
    submitted_by = serializers.CharField(source="submitted_by.username", read_only=True, allow_null=True)
    finished = serializers.BooleanField(source="is_finished", read_only=True)
    public_score = serializers.SerializerMethodField(
        help_text="Rounded to the competition's score_precision; null until scored."
    )
    private_score = serializers.SerializerMethodField(
        help_text="Null until the competition's deadline, whatever the submission's status; "
        "rounded to the competition's score_precision."
    )
    private_score_visible = serializers.SerializerMethodField()

    class Meta:
        model = Submission
        fields = [
            "id", "competition", "team", "submitted_by", "original_name", "size", "description",
            "status", "finished", "error_message", "public_score", "private_score",
            "private_score_visible", "is_final", "is_late", "created_at", "scored_at",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(serializers.FloatField(allow_null=True))
    def get_public_score(self, submission: Submission) -> float | None:
        return submission.competition.shown_score(submission.public_score)

    @extend_schema_field(serializers.FloatField(allow_null=True))
    def get_private_score(self, submission: Submission) -> float | None:
        if not submission.private_score_visible():
            return None
        return submission.competition.shown_score(submission.private_score)

    def get_private_score_visible(self, submission: Submission) -> bool:
        return submission.private_score_visible()


class FinalSelectionSerializer(serializers.Serializer):
    is_final = serializers.BooleanField(
        help_text="Select (true) or unselect (false) this submission for the private leaderboard."
    )


class SubmissionCreateSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="The prediction file (CSV), or the model for model challenges.")
    description = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class LeaderboardRowSerializer(serializers.Serializer):
    rank = serializers.IntegerField()
    team_id = serializers.IntegerField()
    team_name = serializers.CharField()
    members = serializers.ListField(child=serializers.CharField())
    score = serializers.FloatField(help_text="Rounded to the competition's score_precision.")
    entries = serializers.IntegerField()
    last_submitted_at = serializers.DateTimeField()


class LeaderboardSerializer(serializers.Serializer):
    board = serializers.ChoiceField(choices=["public", "private"])
    final = serializers.BooleanField(help_text="True for the private board, revealed at the deadline.")
    higher_is_better = serializers.BooleanField()
    rows = LeaderboardRowSerializer(many=True)


class QuotaSerializer(serializers.Serializer):
    daily_limit = serializers.IntegerField()
    used_today = serializers.IntegerField()
    daily_left = serializers.IntegerField()
    total_limit = serializers.IntegerField(allow_null=True)
    used_total = serializers.IntegerField()
    total_left = serializers.IntegerField(allow_null=True)
    resets_at = serializers.DateTimeField()
    free_failures_limit = serializers.IntegerField(
        help_text="Failed submissions per UTC day that do not count; past them, uploads are "
        "refused until the next day."
    )
    free_failures_today = serializers.IntegerField()
    free_failures_left = serializers.IntegerField()
    can_submit = serializers.BooleanField()


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
