"""Every submission of the organizer's challenges: scores, files, baselines and re-scores."""

from django.contrib import admin, messages
from django.http import FileResponse, HttpRequest
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from competitions import services
from competitions.admin.scope import OrganizerScopedAdmin
from competitions.models import Submission


@admin.register(Submission)
class SubmissionAdmin(OrganizerScopedAdmin):
    list_display = (
        "id",
        "competition",
        "team",
        "submitted_by",
        "status",
        "public_score",
        "private_score",
        "created_at",
        "scoring_time",
    )
    list_filter = ("status", "competition")
    search_fields = ("team__name", "submitted_by__username", "original_name", "description")
    list_select_related = ("competition", "team", "submitted_by")
    raw_id_fields = ("team", "submitted_by")
    date_hierarchy = "created_at"
    actions = ["rescore", "mark_baseline", "unmark_baseline", "clear_disqualification"]
    readonly_fields = (
        "competition",
        "team",
        "submitted_by",
        "stored_file",
        "original_name",
        "size",
        "status",
        "error_message",
        "public_score",
        "private_score",
        "created_at",
        "queued_at",
        "started_at",
        "scored_at",
        "attempts",
        "requeues",
    )
    fields = (
        readonly_fields[:6]
        + ("description", "is_baseline", "disqualified_reason")
        + readonly_fields[6:]
        + ("is_late", "is_final", "score_history")
    )
    readonly_fields += ("is_late", "is_final", "score_history")

    @admin.display(description="Earlier results and re-score notes")
    def score_history(self, obj: Submission) -> str:
        # A re-score that could not produce a score keeps the old one; its note is only here.
        rows = format_html_join(
            "",
            "<li>{} {}: {} {} {}</li>",
            (
                (
                    f"{h.recorded_at:%Y-%m-%d %H:%M}",
                    h.status,
                    "" if h.public_score is None else h.public_score,
                    "" if h.private_score is None else h.private_score,
                    h.error_message,
                )
                for h in obj.history.order_by("recorded_at", "pk")
            ),
        )
        return format_html("<ul>{}</ul>", rows) if rows else "–"

    @admin.display(description="File")
    def stored_file(self, obj: Submission) -> str:
        url = reverse("admin:competitions_submission_download", args=[obj.pk])
        return format_html('<a href="{}">download</a> ({} bytes)', url, obj.size)

    def get_urls(self):
        return [
            path(
                "<int:pk>/download/",
                self.admin_site.admin_view(self.download),
                name="competitions_submission_download",
            ),
            *super().get_urls(),
        ]

    def download(self, request: HttpRequest, pk: int) -> FileResponse:
        submission = get_object_or_404(self.get_queryset(request), pk=pk)
        return FileResponse(
            submission.file.open("rb"),
            as_attachment=True,
            filename=submission.original_name,
            content_type="application/octet-stream",
        )

    def save_model(self, request: HttpRequest, obj: Submission, form, change: bool) -> None:
        if obj.is_baseline and obj.submitted_by_id != request.user.pk and not request.user.is_superuser:
            obj.is_baseline = False
            self.message_user(request, "Only your own submissions can be baselines.", messages.WARNING)
        super().save_model(request, obj, form, change)

    @admin.action(description="Mark as baseline (your own submissions)")
    def mark_baseline(self, request: HttpRequest, queryset) -> None:
        count = services.submissions_mark(queryset.filter(submitted_by=request.user), is_baseline=True)
        self.message_user(request, f"{count} submissions marked as baselines.")

    @admin.action(description="Remove the baseline mark")
    def unmark_baseline(self, request: HttpRequest, queryset) -> None:
        count = services.submissions_mark(queryset, is_baseline=False)
        self.message_user(request, f"{count} submissions are no longer baselines.")

    @admin.action(description="Clear the disqualification")
    def clear_disqualification(self, request: HttpRequest, queryset) -> None:
        count = services.submissions_mark(queryset, disqualified_reason="")
        self.message_user(request, f"{count} submissions reinstated.")

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Submissions come from participants through the site or the API, never from the admin.
        return False

    @admin.display(description="Scoring time")
    def scoring_time(self, obj: Submission) -> str:
        seconds = obj.scoring_seconds
        return "" if seconds is None else f"{seconds:.2f} s"

    @admin.action(description="Re-score the selected submissions")
    def rescore(self, request: HttpRequest, queryset) -> None:
        count = services.submissions_rescore(list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"{count} submissions queued for re-scoring.")
