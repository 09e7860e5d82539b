"""Holdout's data model.

Everything a participant does happens as a member of a Team (a solo team is created when they
join), so limits, leaderboards and, later, final selections are per team from the start.
"""

from .common import (
    MAX_FILE_NAME_LENGTH,
    _data_file_path,
    _features_path,
    _invite_code,
    _prepared_solution_path,
    _solution_path,
    _submission_path,
    file_name_problem,
    private_storage,
    utc_day_start,
)
from .competition import Competition, CompetitionQuerySet, DataFile
from .submissions import RescoreRun, ScoreHistory, Submission, SubmissionQuerySet
from .teams import Participation, Team, TeamInvitation
from .users import ApiKey, User

__all__ = [
    "MAX_FILE_NAME_LENGTH",
    "ApiKey",
    "Competition",
    "CompetitionQuerySet",
    "DataFile",
    "Participation",
    "RescoreRun",
    "ScoreHistory",
    "Submission",
    "SubmissionQuerySet",
    "Team",
    "TeamInvitation",
    "User",
    "_data_file_path",
    "_features_path",
    "_invite_code",
    "_prepared_solution_path",
    "_solution_path",
    "_submission_path",
    "file_name_problem",
    "private_storage",
    "utc_day_start",
]
