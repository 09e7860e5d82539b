"""Joining a challenge, and the team-row lock every team write goes through."""

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from competitions.models import Competition, Participation, Team


@transaction.atomic
def competition_join(*, user, competition: Competition, invite_code: str | None = None) -> Participation:
    """Join a competition, accepting its rules, as a new solo team (Kaggle's model).

    Drafts admit only their organizers (for dry runs); unlisted challenges need their invite
    code; the optional allow-list filters by e-mail; nobody joins after the entry deadline,
    except into a closed challenge that keeps taking late submissions for practice.
    """
    existing = Participation.objects.filter(user=user, competition=competition).first()
    if existing:
        return existing
    organizer = competition.is_organizer(user)
    if not organizer:
        if competition.state == Competition.State.DRAFT:
            raise ValidationError("This challenge is not open to participants yet.")
        if competition.state == Competition.State.UNLISTED and invite_code != competition.invite_code:
            raise ValidationError("This challenge can only be joined through its invite link.")
        if competition.restricts_by_email and not user.email_verified:
            raise ValidationError(
                f"This challenge is limited to certain e-mail addresses, and only a confirmed address "
                f"counts: confirm your e-mail address first. We sent a link to {user.email}; open it, "
                "then join again. No e-mail? Send the link again (below, or from your profile page)."
            )
        if not competition.allows_email(user.email):
            raise ValidationError(
                "This challenge is restricted to invited e-mail addresses; yours is not on its list."
            )
        now = timezone.now()
        if competition.has_ended(now) and not competition.late_submissions:
            raise ValidationError("This challenge has ended; it can no longer be joined.")
        if competition.entry_closed(now) and not competition.has_ended(now):
            raise ValidationError(
                f"The entry deadline ({competition.effective_entry_deadline:%Y-%m-%d %H:%M} UTC) has passed."
            )
    # A double-clicked Join, or two new teams picking the same name at once, collide on a unique
    # constraint; the savepoint lets us look again instead of failing with a 500.
    for _ in range(3):
        try:
            with transaction.atomic():
                team = Team.objects.create(
                    competition=competition, name=unique_team_name(competition, user.username)
                )
                participation = Participation(
                    user=user, competition=competition, team=team, rules_accepted_at=timezone.now()
                )
                # The unique constraint is left to the database: a racing join lands below.
                participation.full_clean(validate_unique=False, validate_constraints=False)
                participation.save()
                return participation
        except IntegrityError:
            existing = Participation.objects.filter(user=user, competition=competition).first()
            if existing:
                return existing
    raise ValidationError("Joining failed because of a conflict; please try again.")


TEAM_CHANGED = "Your team changed while this was being done (a merge); reload the page and try again."


def lock_own_team(user, competition: Competition) -> tuple[Participation, Team]:
    """Lock the user's current team row and return it with their participation.

    The participation is read before the lock, so a merge that commits in between may have
    moved the user and deleted the team that was read; the team is then looked up again. Every
    write that counts or changes a team's submissions or members goes through here (or locks
    the teams it merges), which serialises them per team.
    """
    for _ in range(3):
        participation = Participation.objects.filter(user=user, competition=competition).first()
        if participation is None:
            raise ValidationError("Join the challenge (and accept its rules) first.")
        team = Team.objects.select_for_update().filter(pk=participation.team_id).first()
        if team is not None and (Participation.objects.filter(pk=participation.pk, team=team).exists()):
            participation.team = team
            return participation, team
    raise ValidationError(TEAM_CHANGED)


def unique_team_name(competition: Competition, base: str) -> str:
    # Usernames may be longer than team names; leave room for a " (n)" suffix.
    base = base[: Team._meta.get_field("name").max_length - 8]
    name, n = base, 1
    while Team.objects.filter(competition=competition, name=name).exists():
        n += 1
        name = f"{base} ({n})"
    return name
