"""Teams, who is in them, and invitations to join one."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from .common import _invite_code
from .competition import Competition


class Team(models.Model):
    competition = models.ForeignKey(Competition, on_delete=models.CASCADE, related_name="teams")
    name = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)
    invite_token = models.CharField(max_length=32, default=_invite_code, unique=True, editable=False)
    disqualified_reason = models.TextField(
        blank=True, help_text="Non-empty removes the team from the boards; the team sees the reason."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["competition", "name"], name="unique_team_name"),
        ]

    def __str__(self) -> str:
        return self.name


class Participation(models.Model):
    """A user joined a competition (accepting its rules) and competes as a member of a team."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="participations"
    )
    competition = models.ForeignKey(Competition, on_delete=models.CASCADE, related_name="participations")
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="memberships")
    joined_at = models.DateTimeField(auto_now_add=True)
    rules_accepted_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "competition"], name="unique_participation"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.competition}"

    def clean(self) -> None:
        # A membership in one challenge pointing at another challenge's team would show that
        # team's submissions (private scores included) under the wrong deadline.
        if self.team_id and self.competition_id and self.team.competition_id != self.competition_id:
            raise ValidationError({"team": "This team belongs to another challenge."})


class TeamInvitation(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        ACCEPTED = "accepted", "Accepted"
        DECLINED = "declined", "Declined"
        CANCELLED = "cancelled", "Cancelled"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="invitations")
    invitee = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="team_invitations"
    )
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["team", "invitee"], condition=models.Q(status="pending"), name="one_pending_invite"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.invitee} to {self.team} ({self.status})"

    def clean(self) -> None:
        # An invitation is made by a member of the team, to someone who is not one yet.
        if not (self.team_id and self.invitee_id):
            return
        members = Participation.objects.filter(team_id=self.team_id)
        if self.status == self.Status.PENDING and members.filter(user_id=self.invitee_id).exists():
            raise ValidationError({"invitee": "This user is already in the team."})
        if self.invited_by_id and not members.filter(user_id=self.invited_by_id).exists():
            raise ValidationError({"invited_by": "Only members of a team can invite to it."})
