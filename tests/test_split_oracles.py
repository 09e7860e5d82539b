"""Nothing about the hidden rows can be derived: the split is secret, a failure never depends on
which split a row is in, and the sample submission is not built from the hidden targets.

Each test replays an attack a motivated learner ran against an earlier version.
"""

import csv
import io
import re

import numpy as np
import pyarrow.parquet as pq
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from competitions import services
from competitions.models import Competition, DataFile, Submission
from tests.engine_helpers import make_solution, write_rows
from tests.factories import make_competition
from workers.engine import ScoringError, get_metric, score_submission
from workers.engine import scoring as scoring_module
from workers.engine.sample import sample_submission_csv
from workers.engine.solution import MAX_ABS_VALUE
from workers.engine.splits import public_count_for

IDS = [f"t{i:03d}" for i in range(60)]


def public_ids(prepared) -> set[str]:
    table = pq.read_table(prepared, columns=["id", "public"])
    return {i for i, p in zip(table["id"].to_pylist(), table["public"].to_pylist(), strict=True) if p}


def seeded_public_ids(ids: list[str], fraction: float, seed: int) -> set[str]:
    """What the old split computed for a seed: the learner's side of the attack."""
    order = np.argsort(np.array(ids, dtype=object), kind="stable")
    chosen = np.random.default_rng(seed).permutation(len(ids))[: public_count_for(len(ids), fraction)]
    return {ids[order[c]] for c in chosen}


# --- 1. The split is secret ------------------------------------------------------------------


@pytest.mark.django_db
def test_the_default_split_is_not_any_small_seeds_split(organizer):
    """The attack: the test ids and the fraction are public, the seed defaulted to 0 (the demo
    used 42), so trying a few thousand seeds reproduced the real split."""
    competition = make_competition(organizer)
    assert competition.split_seed is None
    ids = sorted(_solution_ids(competition))
    real = public_ids(services.stored_split(competition))
    guesses = {
        seed for seed in range(3000) if seeded_public_ids(ids, competition.public_fraction, seed) == real
    }
    assert guesses == set()


def _solution_ids(competition: Competition) -> list[str]:
    with competition.solution.open("rb") as fh:
        return [row[0] for row in list(csv.reader(io.TextIOWrapper(fh, "utf-8")))[1:]]


def test_two_preparations_of_the_same_solution_draw_different_splits(tmp_path):
    targets = [float(i) for i in range(len(IDS))]
    a = make_solution(tmp_path, "rmse", IDS, targets, public_fraction=0.3, seed=None, name="a")
    b = make_solution(tmp_path, "rmse", IDS, targets, public_fraction=0.3, seed=None, name="b")
    assert len(public_ids(a)) == len(public_ids(b)) == 18
    assert public_ids(a) != public_ids(b)


def test_a_seed_the_organizer_types_still_reproduces_its_split(tmp_path):
    targets = [float(i) for i in range(len(IDS))]
    a = make_solution(tmp_path, "rmse", IDS, targets, public_fraction=0.3, seed=7, name="a")
    assert public_ids(a) == seeded_public_ids(IDS, 0.3, 7)


@pytest.mark.django_db
def test_re_preparing_keeps_the_stored_assignment_until_an_explicit_re_split(organizer):
    competition = make_competition(organizer)
    before = public_ids(services.stored_split(competition))
    # A metric change re-prepares the solution; the rows keep their boards.
    competition.metric = "log_loss"
    competition.save()
    services.competition_reprepare_solution(competition)
    competition.refresh_from_db()
    assert public_ids(services.stored_split(competition)) == before
    # Uploading the same ids again keeps them too.
    with competition.solution.open("rb") as fh:
        upload = SimpleUploadedFile("solution.csv", fh.read())
    prepared, info = services.solution_prepare_for(competition, upload)
    services.competition_set_solution(
        competition, source=upload, prepared=prepared, info=info, original_name="solution.csv"
    )
    competition.refresh_from_db()
    assert public_ids(services.stored_split(competition)) == before
    # Only an explicit re-split draws anew.
    services.competition_reprepare_solution(competition, resplit=True)
    competition.refresh_from_db()
    assert public_ids(services.stored_split(competition)) != before


# --- 2. A failure is not an oracle -----------------------------------------------------------


def _usage_solution(tmp_path, metric: str, targets: list[float]):
    """Rows 0-29 public, 30-59 private, so a test knows where each row is."""
    usage = ["Public"] * 30 + ["Private"] * 30
    return make_solution(tmp_path, metric, IDS, targets, usage=usage)


def _outcome(tmp_path, solution, metric: str, overrides: dict[int, float], name: str) -> tuple:
    base = [1.0 + i for i in range(len(IDS))]
    rows = [[i, overrides.get(n, base[n])] for n, i in enumerate(IDS)]
    path = write_rows(tmp_path / f"{name}.csv", ["id", "target"], rows)
    try:
        result = score_submission(path, solution, metric=metric)
    except ScoringError as exc:
        # The ids a message names are the learner's own rows; what must not vary is the rest.
        return ("failed", re.sub(r"'t\d{3}'", "ID", str(exc)), exc.charged)
    return ("scored", round(result.public_score, 6) > 0, False)


@pytest.mark.parametrize("metric", ["rmse", "mse", "mae", "r2", "mape", "median_ae", "rmsle"])
def test_huge_predictions_fail_the_same_way_whichever_split_their_rows_are_in(tmp_path, metric):
    """The attack: 1e154 on two rows overflowed the sum of squares only when both rows fell in
    the same split, and the free failure said so."""
    solution = _usage_solution(tmp_path, metric, [1.0 + i for i in range(len(IDS))])
    outcomes = {
        pair: _outcome(tmp_path, solution, metric, {pair[0]: 1e154, pair[1]: 1e154}, f"p{pair[0]}-{pair[1]}")
        for pair in [(0, 1), (40, 41), (0, 40)]  # public+public, private+private, one of each
    }
    assert len(set(outcomes.values())) == 1, outcomes
    status, message, charged = outcomes[(0, 1)]
    assert status == "failed" and not charged
    assert "outside ±1e+15" in message


@pytest.mark.parametrize("value", [MAX_ABS_VALUE, -MAX_ABS_VALUE, 1e14, 7.5e13])
def test_the_largest_allowed_predictions_score_on_every_metric_and_split(tmp_path, value):
    """Within the bound nothing overflows, so nothing fails: MAPE's absurd-prediction probe of a
    private target (binary-searching the overflow point) has no failure to observe."""
    targets = [1e-300 if i == 45 else 1.0 + i for i in range(len(IDS))]
    for metric in ("rmse", "mse", "mae", "mape", "r2", "median_ae"):
        solution = _usage_solution(tmp_path, metric, targets)
        assert _outcome(tmp_path, solution, metric, {45: value, 3: value}, f"{metric}")[0] == "scored"


@pytest.mark.parametrize("failing_split", [0, 1])
def test_a_metric_failing_on_one_split_fails_the_same_way_whichever_split_it_is(
    tmp_path, monkeypatch, failing_split
):
    solution = _usage_solution(tmp_path, "rmse", [1.0 + i for i in range(len(IDS))])
    real = get_metric("rmse")
    calls = []

    def flaky(y_true, y_pred):
        calls.append(len(y_true))
        if len(calls) - 1 == failing_split:
            raise ValueError("Only one class present in y_true")  # a message about the rows
        return real.func(y_true, y_pred)

    monkeypatch.setattr(
        scoring_module, "get_metric", lambda name: real.__class__(**{**vars(real), "func": flaky})
    )
    with pytest.raises(ScoringError) as exc:
        _score_plain(tmp_path, solution)
    assert len(calls) == 2  # both splits were computed
    assert str(exc.value) == scoring_module.METRIC_FAILED_MESSAGE
    assert exc.value.charged


def _score_plain(tmp_path, solution):
    path = write_rows(tmp_path / "plain.csv", ["id", "target"], [[i, 1.0] for i in IDS])
    return score_submission(path, solution, metric="rmse")


def test_targets_beyond_the_bound_are_refused_when_the_solution_is_prepared(tmp_path):
    from workers.engine import SolutionError

    with pytest.raises(SolutionError, match="within ±1e"):
        make_solution(tmp_path, "rmse", IDS, [1e16] + [1.0] * (len(IDS) - 1))


@pytest.mark.django_db
def test_a_metric_time_failure_is_charged_and_a_file_error_is_not(organizer, learner, monkeypatch):
    competition = make_competition(organizer, daily_limit=5)
    team = services.competition_join(user=learner, competition=competition).team
    body = b"id,target\n" + b"".join(f"{i},0.5\n".encode() for i in _solution_ids(competition))

    def upload(data: bytes) -> Submission:
        sub = services.submission_create(
            user=learner, competition=competition, uploaded=SimpleUploadedFile("p.csv", data)
        )
        services.submission_score(sub.pk)
        sub.refresh_from_db()
        return sub

    broken = upload(b"id,target\nnope,1\n")
    assert (broken.status, broken.charged) == (Submission.Status.FAILED, False)
    monkeypatch.setattr(scoring_module, "_score", lambda m, y, p: None)
    unscorable = upload(body)
    assert (unscorable.status, unscorable.charged) == (Submission.Status.FAILED, True)
    assert unscorable.error_message == scoring_module.METRIC_FAILED_MESSAGE
    from competitions.selectors import submission_quota

    assert submission_quota(team).used_today == 1


# --- 4. The sample submission reveals nothing ------------------------------------------------


def test_the_sample_submission_is_not_built_from_hidden_targets(tmp_path):
    """The attack: the regression sample held the exact mean of all hidden targets, and the
    classification sample the hidden majority class."""
    regression = make_solution(tmp_path, "rmse", IDS, [100.0 + i for i in range(len(IDS))], seed=1, name="r")
    out = tmp_path / "sample.csv"
    how = sample_submission_csv(regression, out, metric="rmse")
    values = {row[1] for row in list(csv.reader(out.open()))[1:]}
    assert values == {"0"} and "neutral" in how

    labels = ["b"] * 40 + ["a"] * 20  # hidden majority: b; first class: a
    classification = make_solution(tmp_path, "accuracy", IDS, labels, seed=1, name="c")
    sample_submission_csv(classification, out, metric="accuracy")
    assert {row[1] for row in list(csv.reader(out.open()))[1:]} == {"a"}


def test_the_sample_submission_uses_the_training_files_prior(tmp_path):
    regression = make_solution(tmp_path, "rmse", IDS, [100.0 + i for i in range(len(IDS))], seed=1, name="r")
    train = write_rows(tmp_path / "train.csv", ["id", "x", "target"], [[f"x{i}", i, 2 * i] for i in range(5)])
    out = tmp_path / "sample.csv"
    how = sample_submission_csv(regression, out, metric="rmse", train=train)
    assert {row[1] for row in list(csv.reader(out.open()))[1:]} == {"4"} and "mean" in how

    probs = make_solution(tmp_path, "roc_auc", IDS, [i % 2 for i in range(len(IDS))], seed=1, name="p")
    train = write_rows(
        tmp_path / "t2.csv", ["id", "target"], [[f"x{i}", 1 if i < 1 else 0] for i in range(4)]
    )
    sample_submission_csv(probs, out, metric="roc_auc", train=train)
    assert {row[1] for row in list(csv.reader(out.open()))[1:]} == {"0.25"}


@pytest.mark.django_db
def test_the_generated_sample_file_uses_the_marked_training_file(organizer):
    # Hidden majority 0 (30 of 40); the training data's majority is 1.
    hidden = "id,target\n" + "".join(f"h{i:02d},{int(i % 4 == 0)}\n" for i in range(40))
    competition = make_competition(organizer, metric="accuracy", solution=hidden.encode())
    train = DataFile(competition=competition, name="train.csv", is_training=True)
    train.file.save("train.csv", io.BytesIO(b"id,target\nq1,1\nq2,1\nq3,0\n"), save=False)
    train.save()
    data_file = services.competition_generate_sample_submission(competition)
    rows = list(csv.reader(io.TextIOWrapper(data_file.file.open("rb"), "utf-8")))
    assert rows[0] == ["id", "target"] and len(rows) == 41
    assert {r[1] for r in rows[1:]} == {"1"}
    assert "most frequent class" in data_file.description
