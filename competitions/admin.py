"""The organizer's side: challenges, their files, the hidden solution and every submission."""

import shutil
import tempfile
from pathlib import Path

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from competitions import selectors, services
from competitions.adminscope import OrganizerScoped, OrganizerScopedAdmin
from competitions.bundles import export_competition, import_competition
from competitions.csvexport import csv_attachment, write_leaderboard, write_submissions
from competitions.models import Competition, DataFile, Participation, RescoreRun, Submission, Team, User

SPLIT_FIELDS = ("public_fraction", "split_seed")


class BundleImportForm(forms.Form):
    bundle = forms.FileField(
        help_text="A zip written by “Export as a bundle” or manage.py export_competition."
    )


PREPARE_FIELDS = ("metric", "id_column", "target_column")


class CompetitionAdminForm(forms.ModelForm):
    solution_upload = forms.FileField(
        required=False,
        label="Solution file (CSV)",
        help_text="The hidden test labels: the id column, the target column and optionally a Usage "
        "column (Public/Private). Validated on save; never shown to participants.",
    )
    features_upload = forms.FileField(
        required=False,
        label="Hidden test features (model challenges)",
        help_text="CSV (id column + numeric features) or NPZ (arrays 'ids' and 'x'). Learners' models "
        "run on these; their ids must be exactly the solution's. Never shown to participants.",
    )
    resplit = forms.BooleanField(
        required=False,
        label="Re-split the solution",
        help_text="Draw a new public/private split (secret unless a seed is set). Needed to confirm a "
        "change of the public fraction or seed; otherwise the stored split is kept, also when a "
        "solution with the same ids is uploaded again. Existing submissions should then be re-scored.",
    )

    class Meta:
        model = Competition
        fields = "__all__"  # noqa: DJ007 - the admin passes the fieldsets' fields

    def clean(self):
        cleaned = super().clean()
        self.prepared = self.features = None
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
        resplit = bool(cleaned.get("resplit"))
        needs_prepare = upload or (
            has_solution and (resplit or split_changed or any(f in self.changed_data for f in PREPARE_FIELDS))
        )
        if needs_prepare:
            self._prepare(cleaned, upload, resplit=resplit)
        self._check_features(cleaned)
        return cleaned

    def _check_features(self, cleaned: dict) -> None:
        features = cleaned.get("features_upload")
        if features is None or self.errors:
            return
        if cleaned.get("kind") != Competition.Kind.MODEL:
            self.add_error("features_upload", "Hidden features are only used by model challenges.")
            return
        self.instance.id_column = cleaned["id_column"]
        prepared = self.prepared[0] if self.prepared else None
        try:
            self.features = services.features_validate(features, competition=self.instance, prepared=prepared)
        except ValidationError as exc:
            self.add_error("features_upload", exc.messages)

    def _prepare(self, cleaned: dict, upload, *, resplit: bool) -> None:
        source = upload or self.instance.solution.open("rb")
        keep = None if resplit or not self.instance.pk else services.stored_split(self.instance)
        try:
            self.prepared = services.solution_prepare_upload(
                source,
                id_column=cleaned["id_column"],
                target_column=cleaned["target_column"],
                metric=cleaned["metric"],
                public_fraction=cleaned["public_fraction"],
                seed=cleaned["split_seed"],
                keep_split=keep,
            )
        except ValidationError as exc:
            self.add_error("solution_upload" if upload else None, exc.messages)
        finally:
            if not upload:
                source.close()


class DataFileInline(OrganizerScoped, admin.TabularInline):
    model = DataFile
    extra = 1
    fields = ("name", "file", "description", "is_training", "size")
    readonly_fields = ("size",)


@admin.register(Competition)
class CompetitionAdmin(OrganizerScopedAdmin):
    form = CompetitionAdminForm
    list_display = ("title", "slug", "state", "phase_display", "metric", "deadline_at", "entrants", "links")
    list_filter = ("state", "kind", "metric")
    search_fields = ("title", "slug")
    prepopulated_fields = {"slug": ("title",)}
    filter_horizontal = ("organizers",)
    inlines = [DataFileInline]
    readonly_fields = ("solution_summary", "features_summary", "invite_link", "created_at", "updated_at")
    change_list_template = "admin/competitions/competition/change_list.html"
    actions = ["generate_sample_submission", "rescore_challenge", "export_bundle", "export_submissions"]
    fieldsets = (
        (None, {"fields": ("title", "slug", "subtitle", "kind", "state", "organizers", "join_allowlist")}),
        ("Pages (Markdown)", {"fields": ("overview", "evaluation", "rules", "data_description")}),
        ("Scoring", {"fields": ("metric", "id_column", "target_column", "score_precision")}),
        (
            "Hidden solution and split",
            {
                "fields": (
                    "solution_upload",
                    "solution_summary",
                    "public_fraction",
                    "split_seed",
                    "resplit",
                    "features_upload",
                    "features_summary",
                )
            },
        ),
        (
            "Timeline and limits",
            {
                "fields": (
                    "start_at",
                    "entry_deadline_at",
                    "merger_deadline_at",
                    "deadline_at",
                    "late_submissions",
                    "daily_limit",
                    "total_limit",
                    "max_upload_mb",
                    "scoring_time_limit",
                    "team_size_limit",
                    "final_submission_count",
                )
            },
        ),
        ("History", {"fields": ("invite_link", "created_at", "updated_at"), "classes": ("collapse",)}),
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
        split_source = info["split_source"]
        if split_source == "random" and obj.split_seed_used is not None:
            split_source = "seeded"  # prepared before splits became secret by default
        source = {
            "usage_column": "the Usage column",
            "seeded": f"a seeded random split (fraction {obj.split_fraction_used}, seed "
            f"{obj.split_seed_used}) — derivable by anyone who knows the seed; tick “Re-split” "
            "with an empty seed to draw a secret one",
        }.get(split_source, f"a secret random split (fraction {obj.split_fraction_used})")
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

    @admin.display(description="Hidden features")
    def features_summary(self, obj: Competition) -> str:
        if not obj.features_info:
            return "None (only model challenges need them)."
        return (
            f"{obj.hidden_features_name}: {obj.features_info['row_count']} rows, "
            f"input shape {obj.model_input_shape} per row."
        )

    def save_model(
        self, request: HttpRequest, obj: Competition, form: CompetitionAdminForm, change: bool
    ) -> None:
        super().save_model(request, obj, form, change)
        self._save_solution(request, obj, form)
        if form.features is not None:
            local, info = form.features
            try:
                upload = form.cleaned_data["features_upload"]
                services.competition_set_features(obj, local=local, info=info, original_name=upload.name)
            finally:
                shutil.rmtree(local.parent, ignore_errors=True)

    def _save_solution(self, request: HttpRequest, obj: Competition, form: CompetitionAdminForm) -> None:
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

    @admin.action(description="Generate sample_submission.csv (a constant from the training data)")
    def generate_sample_submission(self, request: HttpRequest, queryset) -> None:
        for competition in queryset:
            try:
                data_file = services.competition_generate_sample_submission(competition)
            except ValidationError as exc:
                self.message_user(request, f"{competition}: {' '.join(exc.messages)}", messages.ERROR)
            else:
                self.message_user(
                    request, f"{competition}: sample_submission.csv generated. {data_file.description}"
                )

    @admin.display(description="Invite link (unlisted challenges)")
    def invite_link(self, obj: Competition) -> str:
        if not obj.pk:
            return ""
        return reverse("competition_invite", args=[obj.invite_code])

    @admin.action(description="Re-score every submission (keeps the previous scores)")
    def rescore_challenge(self, request: HttpRequest, queryset) -> None:
        for competition in queryset:
            run = services.competition_rescore(competition, started_by=request.user)
            self.message_user(request, f"{competition}: re-score #{run.pk} started.")

    @admin.action(description="Export as a bundle (zip)")
    def export_bundle(self, request: HttpRequest, queryset) -> HttpResponse:
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one challenge to export.", messages.WARNING)
            return None
        competition = queryset.get()
        tmp = tempfile.NamedTemporaryFile(suffix=".zip")  # noqa: SIM115 - FileResponse closes it
        export_competition(competition, Path(tmp.name))
        return FileResponse(open(tmp.name, "rb"), as_attachment=True, filename=f"{competition.slug}.zip")

    @admin.action(description="Export all submissions with both scores (CSV)")
    def export_submissions(self, request: HttpRequest, queryset) -> HttpResponse:
        response, writer = csv_attachment("submissions.csv")
        write_submissions(writer, selectors.submissions_for_export(queryset))
        return response

    def import_bundle(self, request: HttpRequest) -> HttpResponse:
        form = BundleImportForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "bundle.zip"
                with open(path, "wb") as dst:
                    for chunk in form.cleaned_data["bundle"].chunks():
                        dst.write(chunk)
                try:
                    competition = import_competition(path, organizer=request.user)
                except ValidationError as exc:
                    for message in exc.messages:
                        form.add_error("bundle", message)
                else:
                    self.message_user(request, f"Imported {competition.slug}.")
                    return redirect("admin:competitions_competition_change", competition.pk)
        context = {
            **self.admin_site.each_context(request),
            "form": form,
            "title": "Import a challenge bundle",
        }
        return TemplateResponse(request, "admin/competitions/competition/import_bundle.html", context)

    def get_urls(self):
        return [
            path(
                "import-bundle/",
                self.admin_site.admin_view(self.import_bundle),
                name="competitions_competition_import",
            ),
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
        response, writer = csv_attachment(f"{competition.slug}-{board}-leaderboard.csv")
        write_leaderboard(writer, competition, rows, submission_ids=True)
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


class MembershipForm(forms.ModelForm):
    """A member added through the team's page joins the team's challenge: the organizer picks
    only the user, so the membership cannot point at another challenge. Users are named by
    username: an organizer has no access to the user list that a raw-id pop-up would open."""

    user = forms.ModelChoiceField(
        queryset=User.objects.all(),
        to_field_name="username",
        widget=forms.TextInput,
        label="Username",
        error_messages={"invalid_choice": "There is no user with this username."},
    )

    class Meta:
        model = Participation
        fields = ("user",)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["user"] = self.instance.user.username

    def clean(self):
        cleaned = super().clean()
        membership = self.instance
        membership.competition_id = Team.objects.values_list("competition_id", flat=True).get(
            pk=membership.team_id
        )
        if membership.rules_accepted_at is None:
            # Added by an organizer, who answers for the rules having been accepted.
            membership.rules_accepted_at = timezone.now()
        user = cleaned.get("user")
        if user is not None:
            # The (user, challenge) constraint involves a field the form does not show, so Django
            # would leave it to the database (an IntegrityError, a 500); check it here.
            taken = Participation.objects.filter(user=user, competition_id=membership.competition_id)
            if taken.exclude(pk=membership.pk).exists():
                self.add_error(
                    "user",
                    f"{user} already takes part in this challenge; to move them, change the team "
                    "of their participation.",
                )
        return cleaned


class MembershipInline(OrganizerScoped, admin.TabularInline):
    model = Participation
    form = MembershipForm
    extra = 0
    fields = ("user", "joined_at", "rules_accepted_at")
    readonly_fields = ("joined_at", "rules_accepted_at")


@admin.register(Team)
class TeamAdmin(OrganizerScopedAdmin):
    list_display = ("name", "competition", "created_at", "disqualified_reason")
    fields = ("competition", "name", "disqualified_reason", "created_at")
    list_filter = ("competition",)
    search_fields = ("name", "memberships__user__username")
    list_select_related = ("competition",)
    inlines = [MembershipInline]

    def get_inlines(self, request: HttpRequest, obj=None):
        # Members are added once the team (and so its challenge) exists.
        return self.inlines if obj is not None else []

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        # A team's challenge is chosen when it is created (among the organizer's own) and fixed after.
        return ("created_at",) if obj is None else ("competition", "created_at")


@admin.register(Participation)
class ParticipationAdmin(OrganizerScopedAdmin):
    list_display = ("user", "competition", "team", "joined_at")
    list_filter = ("competition",)
    search_fields = ("user__username", "team__name")
    list_select_related = ("user", "competition", "team")
    raw_id_fields = ("user", "team")


class RescoreRunAdmin(OrganizerScopedAdmin):
    list_display = ("__str__", "competition", "started_by", "created_at", "remaining")
    list_select_related = ("competition", "started_by")
    readonly_fields = ("competition", "started_by", "created_at", "remaining", "rank_moves")
    fields = readonly_fields
    actions = ["resume"]

    def has_add_permission(self, request: HttpRequest, *args) -> bool:
        return False

    @admin.display(description="Still to score")
    def remaining(self, obj: RescoreRun) -> int:
        return Submission.objects.filter(
            competition=obj.competition, status__in=[Submission.Status.QUEUED, Submission.Status.SCORING]
        ).count()

    @admin.display(description="How ranks moved")
    def rank_moves(self, obj: RescoreRun) -> str:
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{} → {}</td><td>{} → {}</td></tr>",
            (
                (
                    move.team_name,
                    _rank(move.public_before),
                    _rank(move.public_now),
                    _rank(move.private_before),
                    _rank(move.private_now),
                )
                for move in selectors.rescore_rank_moves(obj)
            ),
        )
        return format_html(
            "<table><thead><tr><th>Team</th><th>Public rank</th><th>Private rank</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            rows,
        )

    @admin.action(description="Resume: send unscored submissions to the workers again")
    def resume(self, request: HttpRequest, queryset) -> None:
        for run in queryset:
            self.message_user(request, f"{run}: {services.rescore_run_resume(run)} submissions re-sent.")


def _rank(rank: int | None) -> str | int:
    return "–" if rank is None else rank


admin.site.register(RescoreRun, RescoreRunAdmin)


class HoldoutUserAdmin(UserAdmin):
    """Django's user admin, and whether the e-mail address is confirmed: an operator may confirm
    one by hand (when mail does not reach a school, say). Changing the address clears it unless
    the same save sets it (User.save)."""

    list_display = (*UserAdmin.list_display, "email_verified_at")
    list_filter = (*UserAdmin.list_filter, ("email_verified_at", admin.EmptyFieldListFilter))
    fieldsets = (*UserAdmin.fieldsets, ("E-mail address", {"fields": ("email_verified_at",)}))


admin.site.register(User, HoldoutUserAdmin)
admin.site.site_header = "Holdout administration"
admin.site.site_title = "Holdout admin"
