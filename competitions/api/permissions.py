"""Who may see what: the same rules as the pages (competitions.pages.competition_page)."""

from dataclasses import dataclass

from rest_framework import exceptions

from competitions import selectors
from competitions.models import Competition, Participation

NOT_FOUND = "No such competition (or it is not visible to you)."


@dataclass(frozen=True)
class Access:
    competition: Competition
    participation: Participation | None
    is_organizer: bool

    @property
    def can_download(self) -> bool:
        return self.participation is not None or self.is_organizer


def competition_access(user, slug: str) -> Access:
    """The competition if `user` may see it (404 otherwise), and what the user is in it."""
    competition = Competition.objects.visible_to(user).filter(slug=slug).first()
    if competition is None:
        raise exceptions.NotFound(NOT_FOUND)
    return Access(
        competition=competition,
        participation=selectors.participation_for(user, competition),
        is_organizer=competition.is_organizer(user),
    )


def require_download(access: Access, join_url: str) -> None:
    if not access.can_download:
        raise exceptions.PermissionDenied(
            f"Join the competition (accept its rules at {join_url}) to download its data."
        )


def require_participation(access: Access, join_url: str) -> Participation:
    if access.participation is None:
        raise exceptions.PermissionDenied(f"Join the competition (accept its rules at {join_url}) first.")
    return access.participation
