import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from tests.engine_helpers import make_solution, write_rows
from workers.engine import (
    METRICS,
    SolutionError,
    prepare_solution,
    read_solution_info,
    sample_submission_csv,
    score_submission,
)

IDS = [f"r{i:03d}" for i in range(40)]
BINARY = [i % 2 for i in range(40)]


def prepare(
    tmp_path, header, rows, *, metric="roc_auc", fraction=0.5, seed=0, id_column="id", target_column="target"
):
    src = write_rows(tmp_path / "sol.csv", header, rows)
    return prepare_solution(
        src,
        tmp_path / "sol.parquet",
        id_column=id_column,
        target_column=target_column,
        metric=metric,
        public_fraction=fraction,
        seed=seed,
    )


def problems(tmp_path, header, rows, **kwargs) -> list[str]:
    with pytest.raises(SolutionError) as excinfo:
        prepare(tmp_path, header, rows, **kwargs)
    assert str(excinfo.value) == "; ".join(excinfo.value.problems)
    return excinfo.value.problems


def only(tmp_path, header, rows, **kwargs) -> str:
    found = problems(tmp_path, header, rows, **kwargs)
    assert len(found) == 1, found
    return found[0]


def rows_of(targets, ids=IDS):
    return list(zip(ids, targets, strict=True))


def public_ids(prepared) -> set[str]:
    table = pq.read_table(prepared)
    return {i for i, p in zip(table["id"].to_pylist(), table["public"].to_pylist(), strict=True) if p}


def test_prepares_sorted_parquet_with_metadata(tmp_path):
    info = prepare(tmp_path, ["id", "target"], rows_of(BINARY)[::-1], fraction=0.25)
    table = pq.read_table(tmp_path / "sol.parquet")
    assert table.column_names == ["id", "target", "public"]
    assert table["id"].to_pylist() == sorted(IDS)
    assert info.row_count == 40 and info.public_count == 10 and info.private_count == 30
    assert info.split_source == "seeded"  # the helper passes seed=0
    assert info.classes == ["0", "1"]
    assert info.submission_columns == ["id", "target"]
    assert read_solution_info(tmp_path / "sol.parquet") == info
    json.dumps(info.to_dict())


def test_reports_unreadable_file(tmp_path):
    src = tmp_path / "sol.csv"
    src.write_bytes(bytes(range(256)) * 10)
    with pytest.raises(SolutionError) as excinfo:
        prepare_solution(
            src,
            tmp_path / "o.parquet",
            id_column="id",
            target_column="target",
            metric="accuracy",
            public_fraction=0.5,
            seed=0,
        )
    assert "could not be read" in str(excinfo.value)


def test_missing_id_column_names_columns_found(tmp_path):
    message = only(tmp_path, ["key", "target"], rows_of(BINARY))
    assert "id column 'id' is missing" in message and "'key', 'target'" in message


def test_missing_target_column(tmp_path):
    assert "target column 'target' is missing" in only(tmp_path, ["id", "y"], rows_of(BINARY))


def test_duplicate_ids_counted_with_examples(tmp_path):
    ids = IDS[:38] + ["r000", "r001"]
    message = only(tmp_path, ["id", "target"], rows_of(BINARY, ids))
    assert "2 ids appear more than once: 'r000', 'r001'" in message


def test_empty_ids(tmp_path):
    ids = IDS[:39] + [""]
    assert "1 row has an empty id (row 40)" in only(tmp_path, ["id", "target"], rows_of(BINARY, ids))


def test_ids_with_surrounding_whitespace(tmp_path):
    ids = IDS[:39] + ['" r039"']
    message = only(tmp_path, ["id", "target"], rows_of(BINARY, ids))
    assert "leading or trailing whitespace" in message and "' r039'" in message


def test_ids_stay_strings(tmp_path):
    ids = ["007", "7", "0007"] + [f"{i:05d}" for i in range(20)]
    targets = [0, 1, 0] + [i % 2 for i in range(20)]
    prepared = make_solution(tmp_path, "roc_auc", ids, targets)
    table = pq.read_table(prepared)
    assert table["id"].type == "string"
    assert {"007", "7", "0007"} <= set(table["id"].to_pylist())


@pytest.mark.parametrize(
    ("metric", "targets", "expected"),
    [
        ("rmse", ["1.5", "abc", "inf", ""] + ["1"] * 36, "must hold finite numbers for rmse"),
        ("rmsle", ["-1"] + ["1"] * 39, "must not be negative for rmsle; id 'r000' has '-1'"),
        ("roc_auc", ["2"] + BINARY[1:], "must hold only 0 or 1 for roc_auc; id 'r000' has '2'"),
        ("qwk", ["1.5"] + [i % 3 for i in range(39)], "whole numbers for qwk; id 'r000' has '1.5'"),
        ("accuracy", ["a"] * 40, "at least 2 different labels for accuracy; found 1"),
        ("accuracy", [""] + ["a", "b"] * 19 + ["a"], "1 empty value:"),
        ("mape", ["0"] + ["1", "2"] * 19 + ["3"], "must not contain 0 for mape"),
        ("qwk", ["0", "5000"] * 20, "may span at most 1000"),
    ],
)
def test_target_values_must_fit_the_metric(tmp_path, metric, targets, expected):
    assert expected in only(tmp_path, ["id", "target"], rows_of(targets), metric=metric)


def test_non_finite_numbers_are_each_named(tmp_path):
    message = only(tmp_path, ["id", "target"], rows_of(["1.5", "abc", "inf", ""] + ["1"] * 36), metric="rmse")
    assert "id 'r001' has 'abc'" in message and "id 'r002' has 'inf'" in message
    assert "id 'r003' has ''" in message


def test_binary_targets_are_canonicalised(tmp_path):
    info = prepare(tmp_path, ["id", "target"], rows_of(["1.0", "0.0"] * 20))
    assert info.classes == ["0", "1"]


def test_usage_column_is_honoured(tmp_path):
    usage = ["Public" if i < 10 else "private" for i in range(40)]
    info = prepare(
        tmp_path, ["id", "target", "usage"], [(i, t, u) for i, t, u in zip(IDS, BINARY, usage, strict=True)]
    )
    assert info.split_source == "usage_column"
    assert (info.public_count, info.private_count) == (10, 30)
    assert public_ids(tmp_path / "sol.parquet") == set(IDS[:10])


def test_usage_column_rejects_other_values(tmp_path):
    usage = ["Public", "Ignored"] * 20
    message = only(
        tmp_path, ["id", "target", "Usage"], [(i, t, u) for i, t, u in zip(IDS, BINARY, usage, strict=True)]
    )
    assert "only contain Public or Private" in message and "'Ignored'" in message


def test_split_with_no_rows(tmp_path):
    message = only(tmp_path, ["id", "target", "Usage"], [(i, t, "Public") for i, t in rows_of(BINARY)])
    assert message == "The private split has no rows."


@pytest.mark.parametrize("metric", ["roc_auc", "average_precision", "log_loss", "f1"])
def test_binary_metric_undefined_on_a_split(tmp_path, metric):
    # The private rows are all 1, so the metric is undefined there.
    rows = [(i, 0 if k < 10 else 1, "Public" if k < 20 else "Private") for k, i in enumerate(IDS)]
    message = only(tmp_path, ["id", "target", "Usage"], rows, metric=metric)
    assert "private split holds only the class '1'" in message and "both 0 and 1" in message


def test_roc_auc_ovr_needs_every_class_in_each_split(tmp_path):
    targets = ["a", "b", "c", "d"] * 10
    usage = ["Public" if t != "d" else "Private" for t in targets[:36]] + ["Private"] * 4
    rows = [(i, t, u) for i, t, u in zip(IDS, targets, usage, strict=True)]
    message = only(tmp_path, ["id", "target", "Usage"], rows, metric="roc_auc_ovr")
    assert "public split lacks the class(es) 'd'" in message


def test_r2_needs_a_varying_target_in_each_split(tmp_path):
    rows = [(i, 1.0 if k < 20 else k, "Public" if k < 20 else "Private") for k, i in enumerate(IDS)]
    assert "public split's target is constant" in only(tmp_path, ["id", "target", "Usage"], rows, metric="r2")


@pytest.mark.parametrize("fraction", [0, 1, -0.5, 1.5])
def test_public_fraction_must_be_strictly_between_0_and_1(tmp_path, fraction):
    assert "between 0 and 1" in only(tmp_path, ["id", "target"], rows_of(BINARY), fraction=fraction)


def test_all_problems_reported_at_once(tmp_path):
    ids = IDS[:38] + ["r000", ""]
    found = problems(tmp_path, ["id", "label"], rows_of(BINARY, ids), fraction=2)
    text = " | ".join(found)
    assert len(found) == 4, found
    assert "between 0 and 1" in text and "target column 'target' is missing" in text
    assert "empty id" in text and "appears more than once" in text


def test_unknown_metric_is_a_solution_error(tmp_path):
    assert "unknown metric 'auc'" in only(tmp_path, ["id", "target"], rows_of(BINARY), metric="auc")


def test_random_split_is_deterministic_and_independent_of_row_order(tmp_path):
    rng = np.random.default_rng(1)
    shuffled = [IDS[k] for k in rng.permutation(40)]
    a = make_solution(tmp_path, "rmse", IDS, range(40), public_fraction=0.3, seed=7, name="a")
    b = make_solution(tmp_path, "rmse", shuffled, range(40), public_fraction=0.3, seed=7, name="b")
    c = make_solution(tmp_path, "rmse", IDS, range(40), public_fraction=0.3, seed=8, name="c")
    assert public_ids(a) == public_ids(b)
    assert len(public_ids(a)) == 12
    assert public_ids(a) != public_ids(c)


def test_random_split_keeps_at_least_one_row_each_side(tmp_path):
    info = prepare(
        tmp_path, ["id", "target"], [("a", 1.0), ("b", 2.0), ("c", 3.0)], metric="rmse", fraction=0.01
    )
    assert (info.public_count, info.private_count) == (1, 2)


def test_class_balance_is_reported(tmp_path):
    rows = [(i, "cat" if k % 4 else "dog", "Public" if k < 8 else "Private") for k, i in enumerate(IDS)]
    info = prepare(tmp_path, ["id", "target", "Usage"], rows, metric="accuracy")
    assert info.classes == ["cat", "dog"]
    assert info.class_balance == {"public": {"cat": 6, "dog": 2}, "private": {"cat": 24, "dog": 8}}


def test_class_probability_metrics_use_classes_as_columns(tmp_path):
    info = prepare(
        tmp_path, ["id", "target"], rows_of(["b", "a", "c", "a"] * 10), metric="log_loss_multiclass"
    )
    assert info.submission_columns == ["id", "a", "b", "c"]


def targets_for(metric: str) -> list:
    m = METRICS[metric]
    if m.target == "binary":
        return BINARY
    if m.target == "labels":
        return ["x", "y", "z", "y"] * 10
    if m.target == "ordinal":
        return [k % 5 for k in range(40)]
    return [k + 1.5 for k in range(40)]


@pytest.mark.parametrize("metric", sorted(METRICS))
def test_sample_submission_passes_scoring(tmp_path, metric):
    prepared = make_solution(tmp_path, metric, IDS, targets_for(metric))
    sample = tmp_path / "sample.csv"
    sample_submission_csv(prepared, sample, metric=metric)
    header = sample.read_text().splitlines()[0]
    assert header == ",".join(read_solution_info(prepared).submission_columns)
    result = score_submission(sample, prepared, metric=metric)
    assert result.row_count == 40


def test_sample_submission_quotes_ids_that_need_it(tmp_path):
    ids = [f'a,"{i}' for i in range(10)]
    prepared = make_solution(
        tmp_path, "rmse", [f'"{i.replace(chr(34), 2 * chr(34))}"' for i in ids], range(10)
    )
    sample = tmp_path / "sample.csv"
    sample_submission_csv(prepared, sample, metric="rmse")
    assert score_submission(sample, prepared, metric="rmse").row_count == 10


def test_scoring_with_a_metric_of_another_target_type_is_a_solution_error(tmp_path):
    prepared = make_solution(tmp_path, "accuracy", IDS, ["x", "y"] * 20)
    sample = tmp_path / "sample.csv"
    sample_submission_csv(prepared, sample, metric="accuracy")
    with pytest.raises(SolutionError, match="prepared for the metric 'accuracy'"):
        score_submission(sample, prepared, metric="rmse")


def test_scoring_with_a_stricter_metric_rechecks_the_splits(tmp_path):
    targets = ["a", "b", "c", "d"] * 10
    usage = ["Public" if t != "d" else "Private" for t in targets[:36]] + ["Private"] * 4
    prepared = make_solution(tmp_path, "accuracy", IDS, targets, usage=usage)
    sample = tmp_path / "sample.csv"
    sample_submission_csv(prepared, sample, metric="roc_auc_ovr")
    with pytest.raises(SolutionError, match="lacks the class"):
        score_submission(sample, prepared, metric="roc_auc_ovr")
