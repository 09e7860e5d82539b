"""What the challenge pages share: the header context every tab needs and the leaderboards a
visitor may see now. Used by the learner's pages (views) and the team pages (team_views)."""

from django.http import HttpRequest
from django.shortcuts import get_object_or_404

from competitions import selectors
from competitions.models import Competition


def competition_page(request: HttpRequest, slug: str, tab: str) -> dict:
    """The competition (404 unless visible to this user) and what every tab's header needs."""
    competition = get_object_or_404(Competition.objects.visible_to(request.user), slug=slug)
    participation = selectors.participation_for(request.user, competition)
    is_organizer = competition.is_organizer(request.user)
    return {
        "competition": competition,
        "participation": participation,
        "is_organizer": is_organizer,
        "can_download": participation is not None or is_organizer,
        "my_team_id": participation.team_id if participation else None,
        "tab": tab,
    }


def visible_boards(competition: Competition) -> dict[str, str]:
    """The boards anyone may see now, the default first. Before the deadline only the public
    one exists; after it the final (private) board leads and the public one stays a click away."""
    if not competition.has_ended():
        return {"public": "Public"}
    boards = {"private": "Private (final)", "public": "Public"}
    if competition.late_submissions:
        boards["late"] = "Late submissions"
    return boards
