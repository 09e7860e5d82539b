"""Read queries: quotas and leaderboards."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Max
from django.utils import timezone

from competitions.models import Competition, Participation, Submission, Team, utc_day_start


@dataclass(frozen=True)
class Quota:
    daily_limit: int
    used_today: int
    total_limit: int | None
    used_total: int
    resets_at: datetime  # next midnight UTC

    @property
    def daily_left(self) -> int:
        return max(self.daily_limit - self.used_today, 0)

    @property
    def total_left(self) -> int | None:
        if self.total_limit is None:
            return None
        return max(self.total_limit - self.used_total, 0)

    @property
    def can_submit(self) -> bool:
        return self.daily_left > 0 and (self.total_left is None or self.total_left > 0)


def next_utc_midnight(now: datetime) -> datetime:
    return utc_day_start(now) + timedelta(days=1)


def submission_quota(team: Team, now: datetime | None = None) -> Quota:
    """What a team has used of its limits. Failed submissions are never charged."""
    now = now or timezone.now()
    charged = Submission.objects.filter(team=team).charged()
    competition = team.competition
    return Quota(
        daily_limit=competition.daily_limit,
        used_today=charged.on_utc_day(now).count(),
        total_limit=competition.total_limit,
        used_total=charged.count(),
        resets_at=next_utc_midnight(now),
    )


def participation_for(user, competition: Competition) -> Participation | None:
    if not user.is_authenticated:
        return None
    return Participation.objects.select_related("team").filter(user=user, competition=competition).first()


@dataclass(frozen=True)
class LeaderboardRow:
    rank: int
    team_id: int
    team_name: str
    members: list[str]
    score: float
    entries: int
    last_submitted_at: datetime
    submission_id: int


def _board_submissions(competition: Competition):
    """Scored submissions made during the competition by participants (not organizers)."""
    organizer_ids = set(competition.organizers.values_list("pk", flat=True))
    qs = Submission.objects.filter(
        competition=competition,
        status=Submission.Status.SCORED,
        created_at__lt=competition.deadline_at,
        submitted_by__is_staff=False,
    ).exclude(submitted_by__in=organizer_ids)
    return qs


def _rank(competition: Competition, best: dict[int, tuple[float, Submission]]) -> list[LeaderboardRow]:
    """Order teams by score, then by the time of the submission that earned it (earlier first).

    Ties are broken by submission time, as on Kaggle: whoever reached a score first keeps the
    higher place.
    """
    sign = -1.0 if competition.higher_is_better else 1.0
    ordered = sorted(best.items(), key=lambda item: (sign * item[1][0], item[1][1].created_at, item[1][1].pk))
    team_ids = [team_id for team_id, _ in ordered]
    stats = {
        row["team"]: row
        for row in Submission.objects.filter(team_id__in=team_ids, created_at__lt=competition.deadline_at)
        .charged()
        .values("team")
        .annotate(entries=Count("pk"), last=Max("created_at"))
    }
    members: dict[int, list[str]] = {}
    for team_id, username in Participation.objects.filter(team_id__in=team_ids).values_list(
        "team_id", "user__username"
    ):
        members.setdefault(team_id, []).append(username)
    names = dict(Team.objects.filter(pk__in=team_ids).values_list("pk", "name"))
    return [
        LeaderboardRow(
            rank=position,
            team_id=team_id,
            team_name=names[team_id],
            members=sorted(members.get(team_id, [])),
            score=score,
            entries=stats[team_id]["entries"],
            last_submitted_at=stats[team_id]["last"],
            submission_id=submission.pk,
        )
        for position, (team_id, (score, submission)) in enumerate(ordered, start=1)
    ]


def _best_public(competition: Competition) -> dict[int, Submission]:
    better = (lambda a, b: a > b) if competition.higher_is_better else (lambda a, b: a < b)
    best: dict[int, Submission] = {}
    for sub in _board_submissions(competition).order_by("created_at", "pk").only(
        "pk", "team_id", "public_score", "private_score", "created_at"
    ):
        current = best.get(sub.team_id)
        # Strictly better only: on a tie the earlier submission stays the team's best.
        if current is None or better(sub.public_score, current.public_score):
            best[sub.team_id] = sub
    return best


def leaderboard(
    competition: Competition, *, board: str, reveal_private: bool = False, now: datetime | None = None
) -> list[LeaderboardRow] | None:
    """The public or private board. The private one is None before the deadline unless the
    caller is an organizer tool that passes reveal_private (admin exports).

    Until teams can choose final submissions, a team's private entry is the private score of its
    best public submission (Kaggle's automatic selection).
    """
    if board not in ("public", "private"):
        raise ValueError(f"unknown board {board!r}")
    if board == "private" and not (reveal_private or competition.has_ended(now)):
        return None
    best = _best_public(competition)
    field = "public_score" if board == "public" else "private_score"
    return _rank(competition, {team: (getattr(sub, field), sub) for team, sub in best.items()})


def public_leaderboard(competition: Competition) -> list[LeaderboardRow]:
    """Each team's best public score. Safe to show to anyone who can see the competition."""
    return leaderboard(competition, board="public")


def private_leaderboard(competition: Competition, now: datetime | None = None) -> list[LeaderboardRow] | None:
    """The final ranking for participants, or None before the deadline."""
    return leaderboard(competition, board="private", now=now)


def team_submissions(team: Team):
    return Submission.objects.filter(team=team).select_related("submitted_by").order_by("-created_at", "-pk")
