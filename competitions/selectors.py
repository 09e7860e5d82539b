"""Read queries: quotas, leaderboards and how a re-score moved the ranks."""

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from django.db.models import Count, Max, QuerySet
from django.utils import timezone

from competitions.models import Competition, Participation, RescoreRun, Submission, Team, utc_day_start


@dataclass(frozen=True)
class Quota:
    daily_limit: int
    used_today: int
    total_limit: int | None
    used_total: int
    resets_at: datetime  # next midnight UTC
    free_failures_limit: int = 0  # uncharged failures allowed per UTC day
    free_failures_today: int = 0

    @property
    def daily_left(self) -> int:
        return max(self.daily_limit - self.used_today, 0)

    @property
    def total_left(self) -> int | None:
        if self.total_limit is None:
            return None
        return max(self.total_limit - self.used_total, 0)

    @property
    def free_failures_left(self) -> int:
        return max(self.free_failures_limit - self.free_failures_today, 0)

    @property
    def can_submit(self) -> bool:
        return (
            self.daily_left > 0
            and (self.total_left is None or self.total_left > 0)
            and self.free_failures_left > 0
        )


def next_utc_midnight(now: datetime) -> datetime:
    return utc_day_start(now) + timedelta(days=1)


def submission_quota(team: Team, now: datetime | None = None) -> Quota:
    """What a team has used of its limits. Failed submissions are not charged (unless the
    engine says so), but only so many of them a day are free."""
    now = now or timezone.now()
    charged = Submission.objects.filter(team=team).charged()
    competition = team.competition
    return Quota(
        daily_limit=competition.daily_limit,
        used_today=charged.on_utc_day(now).count(),
        total_limit=competition.total_limit,
        used_total=charged.count(),
        resets_at=next_utc_midnight(now),
        free_failures_limit=competition.free_failures_per_day,
        free_failures_today=Submission.objects.filter(team=team).free_failures().on_utc_day(now).count(),
    )


def participation_for(user, competition: Competition) -> Participation | None:
    if not user.is_authenticated:
        return None
    return Participation.objects.select_related("team").filter(user=user, competition=competition).first()


@dataclass(frozen=True)
class LeaderboardRow:
    rank: int | None  # None for baseline rows, which are references, not competitors
    team_id: int | None
    team_name: str
    members: list[str]
    score: float
    entries: int
    last_submitted_at: datetime
    submission_id: int
    is_baseline: bool = False
    public_rank: int | None = None  # private board only: the team's place on the public board
    other_score: float | None = None  # late board only: the private score beside the public one

    @property
    def rank_change(self) -> int | None:
        """Places gained (+) or lost (-) from the public to the private board: the shake-up."""
        if self.rank is None or self.public_rank is None:
            return None
        return self.public_rank - self.rank


def _participant_submissions(competition: Competition, *, late: bool = False):
    """Scored submissions that may appear on a board: no organizers, staff, baselines or
    disqualified entries; official boards take only what came before the deadline."""
    organizer_ids = list(competition.organizers.values_list("pk", flat=True))
    qs = (
        Submission.objects.filter(competition=competition, status=Submission.Status.SCORED, is_baseline=False)
        .filter(disqualified_reason="", team__disqualified_reason="")
        .exclude(submitted_by__is_staff=True)
        .exclude(submitted_by__in=organizer_ids)
    )
    if late:
        return qs.filter(is_late=True)
    return qs.filter(is_late=False, created_at__lt=competition.deadline_at)


def _sort_key(competition: Competition, score: float, sub: Submission) -> tuple:
    # Scores are compared at the challenge's display precision: two scores that look equal on
    # the board are equal, and the earlier submission takes the higher row.
    sign = -1.0 if competition.higher_is_better else 1.0
    return (sign * round(score, competition.score_precision), sub.created_at, sub.pk)


def _best(competition: Competition, subs, field: str) -> Submission | None:
    subs = [s for s in subs if getattr(s, field) is not None]
    return min(subs, key=lambda s: _sort_key(competition, getattr(s, field), s), default=None)


def _by_team(qs) -> dict[int, list[Submission]]:
    teams: dict[int, list[Submission]] = {}
    for sub in qs.only(
        "pk",
        "team_id",
        "public_score",
        "private_score",
        "created_at",
        "is_final",
        "description",
        "original_name",
    ):
        teams.setdefault(sub.team_id, []).append(sub)
    return teams


def private_candidates(competition: Competition, subs: list[Submission]) -> list[Submission]:
    """The submissions that count for a team's private entry: those it selected, or, if it
    selected none, its best public ones up to the selection limit (Kaggle's automatic rule)."""
    chosen = [s for s in subs if s.is_final]
    if chosen:
        return chosen
    ranked = sorted(subs, key=lambda s: _sort_key(competition, s.public_score, s))
    return ranked[: competition.final_submission_count]


def _entries(competition: Competition, team_ids: list[int], *, late: bool) -> dict[int, dict]:
    qs = Submission.objects.filter(team_id__in=team_ids, is_late=late).charged()
    if not late:
        qs = qs.filter(created_at__lt=competition.deadline_at)
    return {
        row["team"]: row for row in qs.values("team").annotate(entries=Count("pk"), last=Max("created_at"))
    }


def _rows(
    competition: Competition, best: dict[int, tuple[float, Submission]], *, late: bool = False
) -> list[LeaderboardRow]:
    ordered = sorted(best.items(), key=lambda item: _sort_key(competition, item[1][0], item[1][1]))
    team_ids = [team_id for team_id, _ in ordered]
    stats = _entries(competition, team_ids, late=late)
    members: dict[int, list[str]] = {}
    for team_id, username in Participation.objects.filter(team_id__in=team_ids).values_list(
        "team_id", "user__username"
    ):
        members.setdefault(team_id, []).append(username)
    names = dict(Team.objects.filter(pk__in=team_ids).values_list("pk", "name"))
    rows, rank, previous = [], 0, None
    for position, (team_id, (score, sub)) in enumerate(ordered, start=1):
        shown = round(score, competition.score_precision)
        if shown != previous:
            rank, previous = position, shown  # equal displayed scores share a rank
        rows.append(
            LeaderboardRow(
                rank=rank,
                team_id=team_id,
                team_name=names[team_id],
                members=sorted(members.get(team_id, [])),
                score=score,
                entries=stats[team_id]["entries"],
                last_submitted_at=stats[team_id]["last"],
                submission_id=sub.pk,
                other_score=sub.private_score if late else None,
            )
        )
    return rows


def _with_baselines(competition: Competition, rows: list[LeaderboardRow], field: str) -> list[LeaderboardRow]:
    """Insert organizers' baseline submissions as unranked reference rows at their score."""
    baselines = Submission.objects.filter(
        competition=competition, is_baseline=True, status=Submission.Status.SCORED
    ).exclude(**{f"{field}__isnull": True})
    extra = [
        LeaderboardRow(
            rank=None,
            team_id=None,
            team_name=f"Baseline: {b.description or b.original_name}",
            members=[],
            score=getattr(b, field),
            entries=0,
            last_submitted_at=b.created_at,
            submission_id=b.pk,
            is_baseline=True,
        )
        for b in baselines
    ]
    if not extra:
        return rows
    sign = -1.0 if competition.higher_is_better else 1.0
    # Stable sort: a baseline equal to a team's score sits below it.
    return sorted(
        rows + extra, key=lambda r: (sign * round(r.score, competition.score_precision), r.is_baseline)
    )


def leaderboard(
    competition: Competition, *, board: str, reveal_private: bool = False, now: datetime | None = None
) -> list[LeaderboardRow] | None:
    """The "public", "private" or "late" board.

    The private board is None before the deadline unless the caller is an organizer tool that
    passes reveal_private (admin exports): nobody else may see a private score before then. It
    needs no job at the deadline: it is computed from the teams' selections whenever it is read.

    Rows carry scores rounded to the display precision (Competition.shown_score), as
    participants may see them; organizers find the full scores on the submissions in the admin.
    """
    rows = _board_rows(competition, board=board, reveal_private=reveal_private, now=now)
    if rows is None:
        return None
    return [
        replace(r, score=competition.shown_score(r.score), other_score=competition.shown_score(r.other_score))
        for r in rows
    ]


def _board_rows(
    competition: Competition, *, board: str, reveal_private: bool, now: datetime | None
) -> list[LeaderboardRow] | None:
    # Ranked on the stored scores (ties at the display precision share a rank, see _sort_key).
    if board == "public":
        teams = _by_team(_participant_submissions(competition))
        best = {t: _best(competition, subs, "public_score") for t, subs in teams.items()}
        rows = _rows(competition, {t: (b.public_score, b) for t, b in best.items() if b})
        return _with_baselines(competition, rows, "public_score")
    if board == "private":
        if not (reveal_private or competition.has_ended(now)):
            return None
        teams = _by_team(_participant_submissions(competition))
        best = {
            t: _best(competition, private_candidates(competition, subs), "private_score")
            for t, subs in teams.items()
        }
        rows = _rows(competition, {t: (b.private_score, b) for t, b in best.items() if b})
        public_ranks = {
            r.team_id: r.rank for r in leaderboard(competition, board="public") if not r.is_baseline
        }
        rows = [replace(r, public_rank=public_ranks.get(r.team_id)) for r in rows]
        return _with_baselines(competition, rows, "private_score")
    if board == "late":
        teams = _by_team(_participant_submissions(competition, late=True))
        best = {t: _best(competition, subs, "public_score") for t, subs in teams.items()}
        return _rows(competition, {t: (b.public_score, b) for t, b in best.items() if b}, late=True)
    raise ValueError(f"unknown board {board!r}")


def public_leaderboard(competition: Competition) -> list[LeaderboardRow]:
    """Each team's best public score. Safe to show to anyone who can see the competition."""
    return leaderboard(competition, board="public")


def private_leaderboard(competition: Competition, now: datetime | None = None) -> list[LeaderboardRow] | None:
    """The final ranking for participants, or None before the deadline."""
    return leaderboard(competition, board="private", now=now)


def late_leaderboard(competition: Competition) -> list[LeaderboardRow]:
    """Practice board of submissions made after the deadline; never part of the official ones."""
    return leaderboard(competition, board="late")


def board_ranks(competition: Competition) -> dict[str, dict[int, int]]:
    """Each team's rank on the public and private boards, as organizers see them (baselines,
    which belong to no team, left out)."""
    return {
        board: {
            r.team_id: r.rank for r in leaderboard(competition, board=board, reveal_private=True) if r.team_id
        }
        for board in ("public", "private")
    }


@dataclass(frozen=True)
class RankMove:
    team_name: str
    public_before: int | None  # None: not on that board
    public_now: int | None
    private_before: int | None
    private_now: int | None


def rescore_rank_moves(run: RescoreRun) -> list[RankMove]:
    """How each team's ranks moved from the start of a re-score (RescoreRun.ranks_before) to now."""
    now = board_ranks(run.competition)
    before = {b: {int(k): v for k, v in run.ranks_before.get(b, {}).items()} for b in ("public", "private")}
    names = dict(Team.objects.filter(competition=run.competition).values_list("pk", "name"))
    teams = sorted(set(before["public"]) | set(now["public"]) | set(before["private"]) | set(now["private"]))
    return [
        RankMove(
            team_name=names.get(t, f"team {t}"),
            public_before=before["public"].get(t),
            public_now=now["public"].get(t),
            private_before=before["private"].get(t),
            private_now=now["private"].get(t),
        )
        for t in teams
    ]


def submissions_for_export(competitions: QuerySet) -> QuerySet:
    """Every submission of the given challenges, for the organizers' CSV export."""
    return (
        Submission.objects.filter(competition__in=competitions)
        .select_related("competition", "team", "submitted_by")
        .order_by("competition__slug", "created_at")
    )


def team_submissions(team: Team):
    return Submission.objects.filter(team=team).select_related("submitted_by").order_by("-created_at", "-pk")


@dataclass(frozen=True)
class ProfileEntry:
    participation: Participation
    public_rank: int | None
    private_rank: int | None  # only once the challenge has closed
    teams_ranked: int
    submissions: int  # charged: scored, queued or scoring
    scored: int


def profile_entries(user) -> list[ProfileEntry]:
    """A learner's challenges with their team's standing, for the profile page."""
    participations = (
        Participation.objects.filter(user=user).select_related("competition", "team").order_by("-joined_at")
    )
    entries = []
    for participation in participations:
        competition, team_id = participation.competition, participation.team_id
        public = [r for r in public_leaderboard(competition) if not r.is_baseline]
        private = private_leaderboard(competition) or []
        counts = Submission.objects.filter(team_id=team_id).charged()
        entries.append(
            ProfileEntry(
                participation=participation,
                public_rank=next((r.rank for r in public if r.team_id == team_id), None),
                private_rank=next((r.rank for r in private if r.team_id == team_id), None),
                teams_ranked=len(public),
                submissions=counts.count(),
                scored=counts.filter(status=Submission.Status.SCORED).count(),
            )
        )
    return entries
