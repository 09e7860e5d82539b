"""Teams and their members, added by username from the team's page."""

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.utils import timezone

from competitions.admin.scope import OrganizerScoped, OrganizerScopedAdmin
from competitions.models import Participation, Team, User


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
