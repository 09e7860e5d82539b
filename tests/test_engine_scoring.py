import gzip
import io
import string
import zipfile

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from tests.engine_helpers import learner_error, make_solution, write_rows
from workers.engine import DEFAULT_LIMITS, METRICS, Limits, ScoringError, get_metric, score_submission

N = 60
IDS = [f"id{i:03d}" for i in range(N)]
BINARY = [(i * 7) % 3 % 2 for i in range(N)]  # both classes in any reasonable split
LABELS = ["cat", "dog", "emu"]


def targets_for(metric: str) -> list:
    m = METRICS[metric]
    if m.target == "binary":
        return BINARY
    if m.target == "labels":
        return [LABELS[i % 3] for i in range(N)]
    if m.target == "ordinal":
        return [i % 4 for i in range(N)]
    return [1.0 + (i * 37) % 11 for i in range(N)]


def perfect_rows(metric: str) -> tuple[list[str], list[list]]:
    m = METRICS[metric]
    targets = targets_for(metric)
    if m.prediction == "class_probabilities":
        classes = sorted(LABELS)
        rows = [[i] + [1.0 if c == t else 0.0 for c in classes] for i, t in zip(IDS, targets, strict=True)]
        return ["id", *classes], rows
    return ["id", "target"], [[i, t] for i, t in zip(IDS, targets, strict=True)]


BEST = {m.name: (1.0 if m.higher_is_better else 0.0) for m in METRICS.values()}


@pytest.mark.parametrize("metric", sorted(METRICS))
def test_perfect_submission_scores_the_best_value(tmp_path, metric):
    prepared = make_solution(tmp_path, metric, IDS, targets_for(metric))
    header, rows = perfect_rows(metric)
    rng = np.random.default_rng(0)
    rows = [rows[k] for k in rng.permutation(len(rows))]  # any row order is fine
    sub = write_rows(tmp_path / "sub.csv", header, rows)
    result = score_submission(sub, prepared, metric=metric)
    assert result.row_count == N
    assert result.public_score == pytest.approx(BEST[metric], abs=1e-9)
    assert result.private_score == pytest.approx(BEST[metric], abs=1e-9)


def split_arrays(prepared):
    table = pq.read_table(prepared)
    return table["id"].to_pylist(), np.array(table["public"].to_pylist())


def test_known_submission_matches_sklearn_on_each_split(tmp_path):
    prepared = make_solution(tmp_path, "roc_auc", IDS, BINARY, public_fraction=0.4, seed=3)
    rng = np.random.default_rng(5)
    preds = np.round(rng.random(N), 4)
    sub = write_rows(tmp_path / "sub.csv", ["id", "target"], zip(IDS, preds, strict=True))
    result = score_submission(sub, prepared, metric="roc_auc")
    ids, public = split_arrays(prepared)
    truth = dict(zip(IDS, BINARY, strict=True))
    guess = dict(zip(IDS, preds, strict=True))
    y = np.array([truth[i] for i in ids])
    p = np.array([guess[i] for i in ids])
    assert result.public_score == pytest.approx(skm.roc_auc_score(y[public], p[public]))
    assert result.private_score == pytest.approx(skm.roc_auc_score(y[~public], p[~public]))
    assert result.public_score != pytest.approx(result.private_score)


def test_multiclass_submission_matches_sklearn_on_each_split(tmp_path):
    targets = targets_for("log_loss_multiclass")
    prepared = make_solution(tmp_path, "log_loss_multiclass", IDS, targets, seed=4)
    rng = np.random.default_rng(2)
    probs = rng.dirichlet(np.ones(3), N).round(6)
    probs[:, 2] = 1 - probs[:, 0] - probs[:, 1]
    sub = write_rows(
        tmp_path / "sub.csv", ["id", *LABELS], [[i, *p] for i, p in zip(IDS, probs, strict=True)]
    )
    result = score_submission(sub, prepared, metric="log_loss_multiclass")
    ids, public = split_arrays(prepared)
    order = [IDS.index(i) for i in ids]
    y = np.array([LABELS.index(targets[k]) for k in order])
    p = probs[order]
    assert result.public_score == pytest.approx(skm.log_loss(y[public], p[public], labels=[0, 1, 2]))
    assert result.private_score == pytest.approx(skm.log_loss(y[~public], p[~public], labels=[0, 1, 2]))


# -- failures ------------------------------------------------------------------------------


@pytest.fixture
def auc_solution(tmp_path):
    return make_solution(tmp_path, "roc_auc", IDS, BINARY)


def fails(tmp_path, prepared, header, rows, metric="roc_auc", limits=DEFAULT_LIMITS) -> str:
    sub = write_rows(tmp_path / "sub.csv", header, rows)
    with pytest.raises(ScoringError) as excinfo:
        score_submission(sub, prepared, metric=metric, limits=limits)
    return learner_error(excinfo)


def good_rows():
    return [[i, 0.5] for i in IDS]


def test_row_count_and_missing_ids(tmp_path, auc_solution):
    message = fails(tmp_path, auc_solution, ["id", "target"], good_rows()[:-2])
    assert f"has {N - 2} rows; expected {N}" in message
    assert "2 ids are missing: 'id058', 'id059'" in message


def test_duplicate_ids(tmp_path, auc_solution):
    rows = good_rows()[:-1] + [["id000", 0.1]]
    message = fails(tmp_path, auc_solution, ["id", "target"], rows)
    assert "1 id appears more than once: 'id000'" in message
    assert "1 id is missing: 'id059'" in message


def test_unknown_ids_with_examples(tmp_path, auc_solution):
    rows = good_rows()[:-7] + [[f"zz{k}", 0.5] for k in range(7)]
    message = fails(tmp_path, auc_solution, ["id", "target"], rows)
    assert "7 ids are not in the solution: 'zz0', 'zz1', 'zz2', 'zz3', 'zz4', … (7 in all)" in message


def test_unknown_id_hint_for_whitespace(tmp_path, auc_solution):
    rows = good_rows()[:-1] + [['"id059 "', 0.5]]
    message = fails(tmp_path, auc_solution, ["id", "target"], rows)
    assert "ids must match exactly; 'id059 ' differs from 'id059' by whitespace" in message


def test_unknown_id_hint_for_letter_case(tmp_path, auc_solution):
    rows = good_rows()[:-1] + [["ID059", 0.5]]
    assert "'ID059' differs from 'id059' by letter case" in fails(
        tmp_path, auc_solution, ["id", "target"], rows
    )


def test_ids_are_not_numbers(tmp_path):
    prepared = make_solution(tmp_path, "rmse", ["007", "008", "009", "010"], [1, 2, 3, 4])
    message = fails(tmp_path, prepared, ["id", "target"], [[7, 1], [8, 1], [9, 1], [10, 1]], metric="rmse")
    assert "4 ids are not in the solution: '7', '8', '9', '10'" in message


def test_empty_id(tmp_path, auc_solution):
    rows = good_rows()[:-1] + [["", 0.5]]
    assert "1 row has an empty id (data row 60)" in fails(tmp_path, auc_solution, ["id", "target"], rows)


def test_empty_prediction(tmp_path, auc_solution):
    rows = good_rows()
    rows[3][1] = ""
    assert "1 row has an empty value in column 'target': id 'id003'" in fails(
        tmp_path, auc_solution, ["id", "target"], rows
    )


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_prediction(tmp_path, value):
    prepared = make_solution(tmp_path, "rmse", IDS, targets_for("rmse"))
    rows = [[i, 1.0] for i in IDS]
    rows[5][1] = value
    message = fails(tmp_path, prepared, ["id", "target"], rows, metric="rmse")
    assert "not a finite number" in message and "id 'id005'" in message


def test_probability_outside_unit_interval(tmp_path, auc_solution):
    rows = good_rows()
    rows[0][1], rows[1][1] = 1.5, -0.1
    message = fails(tmp_path, auc_solution, ["id", "target"], rows)
    assert "2 rows have a probability in column 'target' outside [0, 1]" in message
    assert "id 'id000' has '1.5'" in message


def test_unknown_labels_list_known_classes(tmp_path):
    prepared = make_solution(tmp_path, "accuracy", IDS, targets_for("accuracy"))
    rows = [[i, "cat"] for i in IDS]
    rows[2][1] = "Cat"
    message = fails(tmp_path, prepared, ["id", "target"], rows, metric="accuracy")
    assert "not a known class: id 'id002' has 'Cat'" in message
    assert "the known classes are 'cat', 'dog', 'emu'" in message


def test_binary_labels_must_be_exactly_0_or_1(tmp_path):
    prepared = make_solution(tmp_path, "f1", IDS, BINARY)
    rows = [[i, 1] for i in IDS]
    rows[0][1] = "1.0"
    message = fails(tmp_path, prepared, ["id", "target"], rows, metric="f1")
    assert "'1.0'" in message and "'0', '1'" in message
    assert "(write '1', not '1.0')" in message


def test_class_probabilities_must_sum_to_one(tmp_path):
    prepared = make_solution(tmp_path, "log_loss_multiclass", IDS, targets_for("log_loss_multiclass"))
    rows = [[i, 0.2, 0.3, 0.5] for i in IDS]
    rows[4] = ["id004", 0.5, 0.5, 0.5]
    rows[5] = ["id005", 0.3335, 0.3335, 0.3335]  # off by 5e-4: accepted
    message = fails(tmp_path, prepared, ["id", "cat", "dog", "emu"], rows, metric="log_loss_multiclass")
    assert message.startswith(
        "1 row has probabilities that do not sum to 1 (±0.001): id 'id004' sums to '1.5'"
    )


def test_rmsle_rejects_predictions_at_or_below_minus_one(tmp_path):
    prepared = make_solution(tmp_path, "rmsle", IDS, targets_for("rmsle"))
    rows = [[i, 0.5] for i in IDS]
    rows[9][1] = -1
    message = fails(tmp_path, prepared, ["id", "target"], rows, metric="rmsle")
    assert "-1 or less" in message and "id 'id009'" in message


def test_rmsle_accepts_small_negative_predictions(tmp_path):
    prepared = make_solution(tmp_path, "rmsle", IDS, targets_for("rmsle"))
    sub = write_rows(tmp_path / "sub.csv", ["id", "target"], [[i, -0.5] for i in IDS])
    assert score_submission(sub, prepared, metric="rmsle").public_score > 0


def test_wrong_header_for_class_probabilities(tmp_path):
    prepared = make_solution(tmp_path, "roc_auc_ovr", IDS, targets_for("roc_auc_ovr"))
    message = fails(tmp_path, prepared, ["id", "target"], [[i, "cat"] for i in IDS], metric="roc_auc_ovr")
    assert "missing column(s) 'cat', 'dog', 'emu'" in message


def test_unknown_metric_raises_value_error(tmp_path, auc_solution):
    sub = write_rows(tmp_path / "sub.csv", ["id", "target"], good_rows())
    with pytest.raises(ValueError, match="unknown metric"):
        score_submission(sub, auc_solution, metric="nope")


# -- containers end to end -------------------------------------------------------------------


def csv_bytes(rows) -> bytes:
    return ("id,target\n" + "".join(f"{i},{p}\n" for i, p in rows)).encode()


def test_gzip_and_zip_score_like_plain(tmp_path, auc_solution):
    rows = [(i, (k * 13 % 17) / 17) for k, i in enumerate(IDS)]
    plain = tmp_path / "plain.csv"
    plain.write_bytes(csv_bytes(rows))
    gz = tmp_path / "sub.csv.gz"
    gz.write_bytes(gzip.compress(csv_bytes(rows)))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("predictions.csv", csv_bytes(rows))
    zipped = tmp_path / "sub.zip"
    zipped.write_bytes(buffer.getvalue())
    expected = score_submission(plain, auc_solution, metric="roc_auc")
    assert score_submission(gz, auc_solution, metric="roc_auc") == expected
    assert score_submission(zipped, auc_solution, metric="roc_auc") == expected


def test_gzip_bomb_of_rows_is_refused_at_the_expected_row_count(tmp_path, auc_solution):
    # Far more rows than the solution has: refused while inflating, long before the byte cap.
    bomb = tmp_path / "bomb.gz"
    bomb.write_bytes(gzip.compress(b"id,target\n" + b"id000,0.5\n" * 1_000_000))
    with pytest.raises(ScoringError) as excinfo:
        score_submission(bomb, auc_solution, metric="roc_auc", limits=Limits(max_decompressed_bytes=2**20))
    assert learner_error(excinfo) == f"The file has more than {N + 100} rows; expected {N}, one per id."


def test_a_few_rows_too_many_still_get_the_precise_id_checks(tmp_path, auc_solution):
    rows = good_rows() + [["id000", 0.1]] * 50
    assert "1 id appears more than once: 'id000'" in fails(tmp_path, auc_solution, ["id", "target"], rows)


# -- robustness -------------------------------------------------------------------------------


FUZZ_METRICS = {
    "roc_auc": [0, 1, 0, 1],
    "accuracy": ["cat", "dog", "cat", "dog"],
    "log_loss_multiclass": ["cat", "dog", "cat", "dog"],
    "qwk": [1, 2, 1, 3],
    "rmsle": [0.5, 1, 2, 3],
}


@pytest.fixture(scope="module")
def fuzz_solutions(tmp_path_factory):
    directory = tmp_path_factory.mktemp("sol")
    usage = ["Public", "Public", "Private", "Private"]
    return {
        metric: make_solution(directory, metric, ["a", "b", "c", "d"], targets, usage=usage, name=metric)
        for metric, targets in FUZZ_METRICS.items()
    }


@pytest.fixture(scope="module")
def small_solution(fuzz_solutions):
    return fuzz_solutions["roc_auc"]


def only_scoring_errors(path, solution, data: bytes, metric: str = "roc_auc"):
    try:
        result = score_submission(path, solution, metric=metric, limits=Limits(max_line_bytes=4096))
    except ScoringError as exc:
        message = str(exc)
        assert message
        # Messages may quote the learner's own text back; any other mention would be a leak.
        uploaded = data.decode("latin-1").lower()
        for word in ("public", "private"):
            assert word not in message.lower() or word in uploaded, message
    else:
        assert np.isfinite(result.public_score) and np.isfinite(result.private_score)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=400))
def test_arbitrary_bytes_raise_only_scoring_errors(tmp_path, small_solution, data):
    path = tmp_path / "fuzz.bin"
    path.write_bytes(data)
    only_scoring_errors(path, small_solution, data)


FIELD = st.one_of(
    st.sampled_from(
        ["a", "b", "c", "d", "e", "", " a", "Public", "cat", "dog", "1", "2", "3", "1.0", "0.5", "-1", "-2"]
        + ["nan", "1e400", '"x,y"', '"']
    ),
    st.text(alphabet=string.printable, max_size=6),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    metric=st.sampled_from(sorted(FUZZ_METRICS)),
    header=st.sampled_from(
        ["id,target", "target,id", "id;target", "id", "id,target,x", "ID,target", "id,cat,dog"]
    ),
    rows=st.lists(st.lists(FIELD, min_size=1, max_size=3), max_size=8),
    newline=st.sampled_from(["\n", "\r\n"]),
    compress=st.booleans(),
)
def test_arbitrary_text_csvs_raise_only_scoring_errors(
    tmp_path, fuzz_solutions, metric, header, rows, newline, compress
):
    text = header + newline + "".join(",".join(r) + newline for r in rows)
    data = text.encode()
    path = tmp_path / "fuzz.csv"
    path.write_bytes(gzip.compress(data) if compress else data)
    only_scoring_errors(path, fuzz_solutions[metric], data, metric)


def test_valid_submission_among_fuzz_shapes_scores(tmp_path, small_solution):
    # Guards the property tests against passing only because everything fails.
    path = tmp_path / "ok.csv"
    path.write_bytes(b"target,id\r\n0.1,a\r\n0.9,b\r\n0.2,c\r\n0.8,d\r\n")
    result = score_submission(path, small_solution, metric="roc_auc")
    assert (result.public_score, result.private_score) == (1.0, 1.0)


def test_get_metric_used_by_scoring_matches_registry():
    assert get_metric("roc_auc") is METRICS["roc_auc"]


# A child process reports its peak resident memory (VmHWM: the high-water mark of this process
# image, unlike ru_maxrss, which Linux carries over from the parent across exec).
PEAK_MEMORY_CHILD = """
import sys
import pyarrow.csv as pcsv
from workers.engine import ScoringError, score_submission

def peak_kb():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))

mode, path, solution = sys.argv[1:4]
before = peak_kb()
message = ""
if mode == "parse":
    rows = pcsv.read_csv(path).num_rows
    message = str(rows)
else:
    try:
        score_submission(path, solution, metric="roc_auc")
    except ScoringError as exc:
        message = str(exc)
print(peak_kb() - before, message)
"""


def _peak_memory_kb(mode: str, path, solution) -> tuple[int, str]:
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    out = subprocess.run(
        [sys.executable, "-c", PEAK_MEMORY_CHILD, mode, str(path), str(solution)],
        capture_output=True,
        text=True,
        cwd=root,
        check=True,
        timeout=600,
    ).stdout.split(maxsplit=1)
    return int(out[0]), out[1].strip() if len(out) > 1 else ""


@pytest.mark.skipif(not __import__("os").path.exists("/proc/self/status"), reason="reads VmHWM (Linux)")
def test_a_row_bomb_is_refused_with_far_less_memory_than_parsing_it_would_take(tmp_path):
    import zlib

    ids = [f"r{i}" for i in range(1000)]
    solution = make_solution(tmp_path, "roc_auc", ids, [i % 2 for i in range(1000)])
    # 20M rows of 4 bytes (80 MB) in a gzip of well under 1 MB; the 1M-row plain prefix is the
    # reference: what parsing one twentieth of the bomb takes.
    line, chunk_rows, chunks, reference_rows = b"a,0\n", 250_000, 80, 1_000_000
    rows = chunk_rows * chunks
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: gzip container
    with open(tmp_path / "bomb.csv.gz", "wb") as f:
        f.write(packer.compress(b"id,target\n"))
        for _ in range(chunks):
            f.write(packer.compress(line * chunk_rows))
        f.write(packer.flush())
    assert (tmp_path / "bomb.csv.gz").stat().st_size < 1024 * 1024
    (tmp_path / "reference.csv").write_bytes(b"id,target\n" + line * reference_rows)

    bomb_kb, message = _peak_memory_kb("score", tmp_path / "bomb.csv.gz", solution)
    parse_kb, parsed = _peak_memory_kb("parse", tmp_path / "reference.csv", solution)

    assert message == "The file has more than 1,100 rows; expected 1,000, one per id."
    assert parsed == str(reference_rows)
    full_parse_kb = parse_kb * rows // reference_rows
    # Refusing the bomb takes under a twentieth of what parsing it would: less than parsing the
    # 1M-row prefix alone.
    assert bomb_kb * 20 < full_parse_kb, (bomb_kb, parse_kb)
