"""Write operations. Views, the admin and Celery tasks call these; nothing else writes rows.

One module per job: participation (joining, the team lock), teams (invitations, merges),
submissions (uploads within limits, queueing, final selections), results (claiming and storing
outcomes), scoring (the worker's pipeline), rescoring (re-scores and the reaper) and solutions
(the organizer's hidden files). The scoring pipeline is re-exported lazily: it loads the engine,
which a web process never needs.
"""

from workers.lazy import lazy_getattr

from .participation import TEAM_CHANGED, competition_join, lock_own_team, unique_team_name
from .rescoring import (
    GAVE_UP_MESSAGE,
    competition_rescore,
    reap_stuck_submissions,
    rescore_run_resume,
    submissions_rescore,
)
from .results import (
    INTERNAL_ERROR_MESSAGE,
    MISCONFIGURED_MESSAGE,
    TIME_LIMIT_MESSAGE,
    submission_claim,
    submission_fail,
    submission_fail_over_time,
    submission_release,
)
from .solutions import (
    competition_generate_sample_submission,
    competition_reprepare_solution,
    competition_set_features,
    competition_set_solution,
    features_validate,
    solution_prepare_for,
    solution_prepare_upload,
    stored_split,
)
from .submissions import (
    enqueue_scoring,
    scoring_queue,
    submission_create,
    submission_enqueue,
    submission_set_final,
    submissions_mark,
)
from .teams import (
    MergeQuota,
    merge_quota,
    team_invitation_answer,
    team_invite,
    team_join,
    team_leave,
    team_rename,
)

__all__ = [
    "GAVE_UP_MESSAGE",
    "INTERNAL_ERROR_MESSAGE",
    "MISCONFIGURED_MESSAGE",
    "TEAM_CHANGED",
    "TIME_LIMIT_MESSAGE",
    "MergeQuota",
    "ScoringOutcome",
    "competition_generate_sample_submission",
    "competition_join",
    "competition_reprepare_solution",
    "competition_rescore",
    "competition_set_features",
    "competition_set_solution",
    "enqueue_scoring",
    "features_validate",
    "lock_own_team",
    "merge_quota",
    "reap_stuck_submissions",
    "rescore_run_resume",
    "sandbox_policy",
    "scoring_queue",
    "solution_prepare_for",
    "solution_prepare_upload",
    "stored_split",
    "submission_claim",
    "submission_create",
    "submission_enqueue",
    "submission_fail",
    "submission_fail_over_time",
    "submission_release",
    "submission_score",
    "submission_set_final",
    "submissions_mark",
    "submissions_rescore",
    "team_invitation_answer",
    "team_invite",
    "team_join",
    "team_leave",
    "team_rename",
    "unique_team_name",
]

__getattr__ = lazy_getattr(
    __name__, {"ScoringOutcome": "scoring", "sandbox_policy": "scoring", "submission_score": "scoring"}
)
