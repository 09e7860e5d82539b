"""The organizer's side: challenges, their files, the hidden solution and every submission."""

import csv
import shutil

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from competitions import selectors, services
from competitions.models import Competition, DataFile, Participation, Submission, Team, User

SPLIT_FIELDS = ("public_fraction", "split_seed")
PREPARE_FIELDS = ("metric", "id_column", "target_column")


class OrganizerScopedAdmin(admin.ModelAdmin):
    """Staff who are not superusers are organizers: they see and edit only their own challenges.

    Access follows the competition's `organizers` list instead of Django's per-model permission
    tables, so making someone the organizer of a challenge is all it takes.
    """

    organizers_lookup = "competition__organizers"

    def _own(self, request: HttpRequest, queryset):
        if request.user.is_superuser:
            return queryset
        return queryset.filter(**{self.organizers_lookup: request.user}).distinct()

    def get_queryset(self, request: HttpRequest):
        return self._own(request, super().get_queryset(request))

    def _allowed(self, request: HttpRequest, obj=None) -> bool:
        if not (request.user.is_active and request.user.is_staff):
            return False
        if request.user.is_superuser or obj is None:
            return True
        return self._own(request, type(obj).objects.filter(pk=obj.pk)).exists()

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._allowed(request)

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return self._allowed(request, obj)

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return self._allowed(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return self._allowed(request, obj)

    def has_add_permission(self, request: HttpRequest, *args) -> bool:
        return self._allowed(request)

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs):
        if db_field.name == "competition" and not request.user.is_superuser:
            kwargs["queryset"] = Competition.objects.filter(organizers=request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class CompetitionAdminForm(forms.ModelForm):
    solution_upload = forms.FileField(
        required=False,
        label="Solution file (CSV)",
        help_text="The hidden test labels: the id column, the target column and optionally a Usage "
        "column (Public/Private). Validated on save; never shown to participants.",
    )
    resplit = forms.BooleanField(
        required=False,
        label="Re-split the solution",
        help_text="Confirm that changing the public fraction or seed re-assigns rows between the "
        "public and private boards. Existing submissions should then be re-scored.",
    )

    class Meta:
        model = Competition
        fields = "__all__"  # noqa: DJ007 - the admin passes the fieldsets' fields

    def clean(self):
        cleaned = super().clean()
        self.prepared = None
        if self.errors:
            return cleaned
        upload = cleaned.get("solution_upload")
        has_solution = bool(self.instance.pk and self.instance.solution)
        split_changed = has_solution and any(f in self.changed_data for f in SPLIT_FIELDS)
        if split_changed and not upload and not cleaned.get("resplit"):
            raise ValidationError(
                {
                    "resplit": "The public fraction or split seed changed. Tick “Re-split the "
                    "solution” to re-assign rows, or restore the previous values."
                }
            )
        needs_prepare = upload or (
            has_solution and (split_changed or any(f in self.changed_data for f in PREPARE_FIELDS))
        )
        if not needs_prepare:
            return cleaned
        source = upload or self.instance.solution.open("rb")
        try:
            self.prepared = services.solution_prepare_upload(
                source,
                id_column=cleaned["id_column"],
                target_column=cleaned["target_column"],
                metric=cleaned["metric"],
                public_fraction=cleaned["public_fraction"],
                seed=cleaned["split_seed"],
            )
        except ValidationError as exc:
            raise ValidationError({"solution_upload" if upload else None: exc.messages}) from None
        finally:
            if not upload:
                source.close()
        return cleaned


class DataFileInline(admin.TabularInline):
    model = DataFile

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return request.user.is_staff

    has_change_permission = has_delete_permission = has_view_permission = has_add_permission
    extra = 1
    fields = ("name", "file", "description", "size")
    readonly_fields = ("size",)


@admin.register(Competition)
class CompetitionAdmin(OrganizerScopedAdmin):
    organizers_lookup = "organizers"
    form = CompetitionAdminForm
    list_display = ("title", "slug", "state", "phase_display", "metric", "deadline_at", "entrants", "links")
    list_filter = ("state", "kind", "metric")
    search_fields = ("title", "slug")
    prepopulated_fields = {"slug": ("title",)}
    filter_horizontal = ("organizers",)
    inlines = [DataFileInline]
    readonly_fields = ("solution_summary", "created_at", "updated_at")
    actions = ["generate_sample_submission", "rescore_all"]
    fieldsets = (
        (None, {"fields": ("title", "slug", "subtitle", "kind", "state", "organizers")}),
        ("Pages (Markdown)", {"fields": ("overview", "evaluation", "rules", "data_description")}),
        ("Scoring", {"fields": ("metric", "id_column", "target_column", "score_precision")}),
        (
            "Hidden solution and split",
            {"fields": ("solution_upload", "solution_summary", "public_fraction", "split_seed", "resplit")},
        ),
        (
            "Timeline and limits",
            {"fields": ("start_at", "deadline_at", "daily_limit", "total_limit", "max_upload_mb")},
        ),
        ("History", {"fields": ("created_at", "updated_at"), "classes": ("collapse",)}),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(entrant_count=Count("participations", distinct=True))

    @admin.display(description="Phase")
    def phase_display(self, obj: Competition) -> str:
        return obj.phase

    @admin.display(description="Entrants", ordering="entrant_count")
    def entrants(self, obj: Competition) -> int:
        return obj.entrant_count

    @admin.display(description="Links")
    def links(self, obj: Competition) -> str:
        submissions = (
            reverse("admin:competitions_submission_changelist") + f"?competition__id__exact={obj.pk}"
        )
        return format_html(
            '<a href="{}">submissions</a> · <a href="{}">public board CSV</a> · '
            '<a href="{}">private board CSV</a> · <a href="{}">site</a>',
            submissions,
            reverse("admin:competitions_competition_leaderboard", args=[obj.pk, "public"]),
            reverse("admin:competitions_competition_leaderboard", args=[obj.pk, "private"]),
            obj.get_absolute_url(),
        )

    @admin.display(description="Solution")
    def solution_summary(self, obj: Competition) -> str:
        info = obj.solution_info
        if not info:
            return "No solution yet: participants cannot submit until one is uploaded."
        source = (
            "the Usage column"
            if info["split_source"] == "usage_column"
            else (f"a random split (fraction {obj.split_fraction_used}, seed {obj.split_seed_used})")
        )
        parts = [
            format_html(
                "<strong>{}</strong> — {} rows: {} public, {} private, from {}.",
                obj.solution_name,
                info["row_count"],
                info["public_count"],
                info["private_count"],
                source,
            ),
            format_html("Submission header: <code>{}</code>", ",".join(info["submission_columns"])),
        ]
        balance = info.get("class_balance")
        if balance:
            rows = format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                (
                    (label, balance["public"].get(label, 0), balance["private"].get(label, 0))
                    for label in info["classes"]
                ),
            )
            parts.append(
                format_html(
                    "<table><thead><tr><th>Class</th><th>Public</th><th>Private</th></tr></thead>"
                    "<tbody>{}</tbody></table>",
                    rows,
                )
            )
        return format_html_join("", "<p>{}</p>", ((p,) for p in parts))

    def save_model(
        self, request: HttpRequest, obj: Competition, form: CompetitionAdminForm, change: bool
    ) -> None:
        super().save_model(request, obj, form, change)
        if form.prepared is None:
            return
        prepared, info = form.prepared
        upload = form.cleaned_data.get("solution_upload")
        try:
            services.competition_set_solution(
                obj,
                source=upload,
                prepared=prepared,
                info=info,
                original_name=upload.name if upload else obj.solution_name,
            )
        finally:
            shutil.rmtree(prepared.parent, ignore_errors=True)
        self.message_user(
            request,
            f"Solution prepared: {info.row_count} rows ({info.public_count} public, "
            f"{info.private_count} private).",
        )

    def save_related(self, request: HttpRequest, form, formsets, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        if not change:
            # Whoever creates a challenge organizes it (and so keeps access to it).
            form.instance.organizers.add(request.user)

    @admin.action(description="Generate sample_submission.csv from the solution")
    def generate_sample_submission(self, request: HttpRequest, queryset) -> None:
        for competition in queryset:
            try:
                services.competition_generate_sample_submission(competition)
            except ValidationError as exc:
                self.message_user(request, f"{competition}: {' '.join(exc.messages)}", messages.ERROR)
            else:
                self.message_user(request, f"{competition}: sample_submission.csv generated.")

    @admin.action(description="Re-score every submission of the selected challenges")
    def rescore_all(self, request: HttpRequest, queryset) -> None:
        ids = list(Submission.objects.filter(competition__in=queryset).values_list("pk", flat=True))
        count = services.submissions_rescore(ids)
        self.message_user(request, f"{count} submissions queued for re-scoring.")

    def get_urls(self):
        return [
            path(
                "<int:pk>/leaderboard/<str:board>.csv",
                self.admin_site.admin_view(self.leaderboard_csv),
                name="competitions_competition_leaderboard",
            ),
            *super().get_urls(),
        ]

    def leaderboard_csv(self, request: HttpRequest, pk: int, board: str) -> HttpResponse:
        competition = get_object_or_404(Competition, pk=pk)
        if not self.has_view_permission(request, competition) or board not in ("public", "private"):
            return HttpResponse(status=404)
        rows = selectors.leaderboard(competition, board=board, reveal_private=True)
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{competition.slug}-{board}-leaderboard.csv"'
        writer = csv.writer(response)
        writer.writerow(
            ["rank", "team", "members", "score", "entries", "last_submission_utc", "submission_id"]
        )
        for row in rows:
            writer.writerow(
                [
                    row.rank,
                    row.team_name,
                    " ".join(row.members),
                    competition.format_score(row.score),
                    row.entries,
                    row.last_submitted_at.isoformat(),
                    row.submission_id,
                ]
            )
        return response


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
    actions = ["rescore"]
    readonly_fields = (
        "competition",
        "team",
        "submitted_by",
        "file",
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
    fields = readonly_fields[:6] + ("description",) + readonly_fields[6:]

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


class MembershipInline(admin.TabularInline):
    model = Participation

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return request.user.is_staff

    has_change_permission = has_add_permission = has_delete_permission = has_view_permission
    extra = 0
    raw_id_fields = ("user",)
    readonly_fields = ("joined_at", "rules_accepted_at")


@admin.register(Team)
class TeamAdmin(OrganizerScopedAdmin):
    list_display = ("name", "competition", "created_at")
    list_filter = ("competition",)
    search_fields = ("name", "memberships__user__username")
    list_select_related = ("competition",)
    inlines = [MembershipInline]


@admin.register(Participation)
class ParticipationAdmin(OrganizerScopedAdmin):
    list_display = ("user", "competition", "team", "joined_at")
    list_filter = ("competition",)
    search_fields = ("user__username", "team__name")
    list_select_related = ("user", "competition", "team")
    raw_id_fields = ("user", "team")


admin.site.register(User, UserAdmin)
admin.site.site_header = "Holdout administration"
admin.site.site_title = "Holdout admin"
