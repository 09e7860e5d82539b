"""The organizer's side of a challenge: its settings, files, hidden solution, exports and bundles."""

import shutil
import tempfile
from pathlib import Path

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from competitions import selectors, services
from competitions.admin.competition_forms import BundleImportForm, CompetitionAdminForm
from competitions.admin.scope import OrganizerScoped, OrganizerScopedAdmin
from competitions.bundles import export_competition, import_competition
from competitions.csvexport import csv_attachment, write_leaderboard, write_submissions
from competitions.models import Competition, DataFile


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
