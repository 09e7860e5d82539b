"""Team operations: invitations, invite links, leaving and merging.

Every operation locks the team rows it touches (in primary-key order, so two operations on the
same pair of teams cannot deadlock) and re-reads what it checks inside the lock, which is what
keeps racing invites and merges consistent.
"""

from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from competitions.models import (
    Competition,
    Participation,
    Submission,
    Team,
    TeamInvitation,
    User,
    utc_day_start,
)
from competitions.services.participation import (
    TEAM_CHANGED,
    competition_join,
    lock_own_team,
    unique_team_name,
)


def _lock(*teams: Team) -> list[Team]:
    """Lock teams in primary-key order; a team merged away meanwhile is a clear refusal."""
    ids = sorted({t.pk for t in teams})
    locked = {t.pk: t for t in Team.objects.select_for_update().filter(pk__in=ids).order_by("pk")}
    if len(locked) != len(ids):
        raise ValidationError(TEAM_CHANGED)
    return [locked[t.pk] for t in teams]


def _member(user, competition: Competition) -> Participation:
    participation = Participation.objects.filter(user=user, competition=competition).first()
    if participation is None:
        raise ValidationError("Join the challenge first.")
    return participation


@dataclass(frozen=True)
class MergeQuota:
    """Kaggle's rule: a merged team may not have made more submissions than one team could have
    by now, i.e. the daily limit times the days the challenge has run (today included)."""

    submissions: int
    allowed: int
    days: int
    daily_limit: int

    @property
    def ok(self) -> bool:
        return self.submissions <= self.allowed

    def explain(self) -> str:
        return (
            f"Together the teams have made {self.submissions} submissions; a merge is allowed only up to "
            f"{self.daily_limit} per day × {self.days} days the challenge has run = {self.allowed}."
        )


def merge_quota(a: Team, b: Team, now: datetime | None = None) -> MergeQuota:
    now = now or timezone.now()
    competition = a.competition
    days = max((utc_day_start(now) - utc_day_start(competition.start_at)).days + 1, 1)
    used = Submission.objects.filter(team__in=[a, b]).charged().count()
    return MergeQuota(used, competition.daily_limit * days, days, competition.daily_limit)


def _check_merge(into: Team, other: Team, now: datetime) -> None:
    competition = into.competition
    if into.pk == other.pk:
        raise ValidationError("You are already in this team.")
    if competition.merging_closed(now):
        raise ValidationError(
            f"Teams can no longer merge: the merger deadline was "
            f"{competition.effective_merger_deadline:%Y-%m-%d %H:%M} UTC."
        )
    size = into.memberships.count() + other.memberships.count()
    if size > competition.team_size_limit:
        raise ValidationError(
            f"The merged team would have {size} members; this challenge allows at most "
            f"{competition.team_size_limit}."
        )
    quota = merge_quota(into, other, now)
    if not quota.ok:
        raise ValidationError(quota.explain())


def _merge(into: Team, other: Team) -> None:
    Participation.objects.filter(team=other).update(team=into)
    Submission.objects.filter(team=other).update(team=into)
    TeamInvitation.objects.filter(team=other, status=TeamInvitation.Status.PENDING).update(
        status=TeamInvitation.Status.CANCELLED, answered_at=timezone.now()
    )
    other.delete()


@transaction.atomic
def team_invite(*, inviter, team: Team, username: str) -> TeamInvitation:
    competition = team.competition
    if _member(inviter, competition).team_id != team.pk:
        raise ValidationError("Only members of a team can invite to it.")
    invitee = User.objects.filter(username=username.strip()).first()
    if invitee is None:
        raise ValidationError(f"There is no user called “{username.strip()}”.")
    if Participation.objects.filter(user=invitee, team=team).exists():
        raise ValidationError(f"{invitee.username} is already in your team.")
    if competition.merging_closed():
        raise ValidationError("The team-merger deadline has passed.")
    invitation, _ = TeamInvitation.objects.get_or_create(
        team=team, invitee=invitee, status=TeamInvitation.Status.PENDING, defaults={"invited_by": inviter}
    )
    return invitation


@transaction.atomic
def team_invitation_answer(*, user, invitation: TeamInvitation, accept: bool) -> Team | None:
    invitation = TeamInvitation.objects.select_for_update().get(pk=invitation.pk)
    if invitation.invitee_id != user.pk or invitation.status != TeamInvitation.Status.PENDING:
        raise ValidationError("This invitation is no longer open.")
    invitation.answered_at = timezone.now()
    if not accept:
        invitation.status = TeamInvitation.Status.DECLINED
        invitation.save(update_fields=["status", "answered_at"])
        return None
    team = team_join(user=user, team=invitation.team)
    invitation.status = TeamInvitation.Status.ACCEPTED
    invitation.save(update_fields=["status", "answered_at"])
    return team


@transaction.atomic
def team_join(*, user, team: Team, token: str | None = None) -> Team:
    """Bring a user (and the team they are in, if any) into `team`: a merge under the quota rule.

    Reached by accepting an invitation, or with the team's invite link (`token`).
    """
    competition = team.competition
    if token is not None and token != team.invite_token:
        raise ValidationError("This invite link is not valid any more.")
    participation = Participation.objects.filter(user=user, competition=competition).first()
    if participation is None:
        participation = competition_join(user=user, competition=competition)
    own = participation.team
    into, other = _lock(team, own)
    # The user's team was read before the locks: if a merge moved them since, stop rather than
    # merge teammates they no longer share a team with.
    if not Participation.objects.filter(pk=participation.pk, team=other).exists():
        raise ValidationError(TEAM_CHANGED)
    _check_merge(into, other, timezone.now())
    _merge(into, other)
    return into


@transaction.atomic
def team_leave(*, user, competition: Competition) -> Team:
    """Leave a team for a new solo team; only while the team has not submitted (Kaggle)."""
    participation, team = lock_own_team(user, competition)
    if team.memberships.count() == 1:
        raise ValidationError("You are the only member of this team.")
    if Submission.objects.filter(team=team).exists():
        raise ValidationError("A team that has submitted cannot be left.")
    solo = Team.objects.create(competition=competition, name=unique_team_name(competition, user.username))
    participation.team = solo
    participation.save(update_fields=["team"])
    return solo


@transaction.atomic
def team_rename(*, user, competition: Competition, name: str) -> Team:
    _, team = lock_own_team(user, competition)
    team.name = name.strip()
    team.full_clean()
    team.save(update_fields=["name"])
    return team
