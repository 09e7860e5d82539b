"""Re-score runs: what is still to score, how ranks moved, and resuming a run."""

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from competitions import selectors, services
from competitions.admin.scope import OrganizerScopedAdmin
from competitions.models import RescoreRun, Submission


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
