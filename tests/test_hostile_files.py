"""Broken and hostile submissions, sent end to end through the submit page.

Every one must be answered: no 500, the submission ends FAILED with a message that says what is
wrong (and never mentions the public/private split), the team is not charged, and the message is
shown escaped. Files a spreadsheet or an editor commonly produces (BOM, CRLF) must be scored.
"""

import bz2
import csv
import gzip
import io
import random
import struct
import zipfile
from dataclasses import dataclass

import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils.html import escape
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from competitions import selectors, services
from competitions.models import Submission
from tests.factories import make_competition
from workers.engine import ScoringError, score_submission

IDS = [f"r{i:03d}" for i in range(40)]
# The engine's decompression cap is not configurable from Django settings; the bomb cases lower
# it for the test so that no large file is ever inflated on disk.
TEST_DECOMPRESSED_CAP = 1024 * 1024
MiB = 1024 * 1024


def rows(ids=IDS, value: str = "0.5", sep: str = ",") -> str:
    return "".join(f"{i}{sep}{value}\n" for i in ids)


def body(text: str, header: str = "id,target") -> bytes:
    return f"{header}\n{text}".encode()


def zipped(*files: tuple[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files:
            zf.writestr(name, data)
    return buffer.getvalue()


GOOD = body(rows())
FORMULA_ID = "=cmd|' /C calc'!A0"
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
    + struct.pack(">II", 1, 1)
    + b"\x08\x06\x00\x00\x00"
    + random.Random(1).randbytes(64)
)
XLSX = zipped(
    ("[Content_Types].xml", b"<Types/>"),
    ("xl/workbook.xml", b"<workbook/>"),
    ("xl/worksheets/sheet1.xml", b"<worksheet/>"),
)
# Well under 100 KB compressed, 2.6 MB inflated: 300,000 rows, refused at the row cap (the
# solution's 40 rows and a margin) long before the lowered decompression cap.
BOMB_BODY = b"id,target\n" + b"r000,0.5\n" * 300_000
ROW_CAP_MESSAGE = "The file has more than 140 rows; expected 40, one per id."
# One endless line: past the lowered decompression cap.
LINE_BOMB_BODY = b"id,target\nr000," + b"0" * (3 * MiB)


@dataclass(frozen=True)
class Case:
    id: str
    data: bytes
    expect: str  # a distinctive part of the message the learner must see
    name: str = "preds.csv"


HOSTILE = [
    Case("header-only", b"id,target\n", "The file has a header but no data rows."),
    Case("header-without-newline", b"id,target", "has a header but no data rows"),
    Case(
        "wrong-columns",
        body(rows(), "a,b"),
        "missing column(s) 'id', 'target'; unexpected column(s) 'a', 'b'",
    ),
    Case("missing-column", ("id\n" + "\n".join(IDS) + "\n").encode(), "The header has 1 column 'id'"),
    Case("extra-column", body(rows(value="0.5,1"), "id,target,extra"), "unexpected column(s) 'extra'"),
    Case("header-whitespace", body(rows(), "id ,target"), "'id ' differs from 'id' by whitespace"),
    Case(
        "duplicate-header",
        body(rows(value="0.5,0.5"), "id,id,target"),
        "The header repeats column names: 'id'",
    ),
    Case("duplicate-ids", body(rows() + "r000,0.5\n"), "1 id appears more than once: 'r000'"),
    Case("missing-ids", body(rows(IDS[:-1])), "1 id is missing: 'r039'"),
    Case("unknown-ids", body(rows([*IDS[:-1], "zzz"])), "1 id is not in the solution: 'zzz'"),
    Case(
        "ids-differ-by-whitespace",
        body(rows([" r000", *IDS[1:]])),
        "' r000' differs from 'r000' by whitespace",
    ),
    Case("ids-differ-by-case", body(rows(["R000", *IDS[1:]])), "'R000' differs from 'r000' by letter case"),
    Case("two-rows", body(rows(IDS[:2])), "The submission has 2 rows; expected 40"),
    Case("nan", body(rows(IDS[:-1]) + "r039,NaN\n"), "not a finite number: id 'r039' has 'nan'"),
    Case("inf", body(rows(IDS[:-1]) + "r039,inf\n"), "not a finite number: id 'r039' has 'inf'"),
    Case("minus-inf", body(rows(IDS[:-1]) + "r039,-inf\n"), "id 'r039' has '-inf'"),
    Case("overflowing-number", body(rows(IDS[:-1]) + "r039,1e400\n"), "not a finite number"),
    Case(
        "empty-value",
        body(rows(IDS[:-1]) + "r039,\n"),
        "1 row has an empty value in column 'target': id 'r039'",
    ),
    Case(
        "text-in-number-column",
        body(rows(IDS[:-1]) + "r039,abc\n"),
        "must contain numbers; found 'abc' on data row 40",
    ),
    Case("probability-above-one", body(rows(IDS[:-1]) + "r039,1.5\n"), "outside [0, 1]: id 'r039' has '1.5'"),
    Case(
        "probability-below-zero", body(rows(IDS[:-1]) + "r039,-0.1\n"), "outside [0, 1]: id 'r039' has '-0.1'"
    ),
    Case("semicolons", body(rows(sep=";"), "id;target"), "the file must be comma-separated"),
    Case(
        "latin-1",
        body(rows(IDS[:-1]) + "r039,0.5\n").replace(b"r039", "r039é".encode("latin-1")),
        "not valid UTF-8 in column 'id'",
    ),
    Case("utf-16", GOOD.decode().encode("utf-16"), "looks like UTF-16 text or binary data"),
    Case("binary-garbage", random.Random(0).randbytes(4096), "binary data"),
    Case("nul-bytes", body(rows(IDS[:-1]) + "r039\x00,0.5\n"), "contains binary data (NUL bytes)"),
    Case("only-whitespace", b"   \n  \n\t\n", "Line 1 is empty; the first line must be the header."),
    Case("png-renamed", PNG, "UTF-16 text or binary data"),
    Case("xlsx-renamed", XLSX, "must contain exactly one CSV file; it contains 3 files"),
    Case("pdf-renamed", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", "looks like a PDF document"),
    Case("bzip2", bz2.compress(GOOD), "looks like bzip2-compressed"),
    Case("truncated-gzip", gzip.compress(GOOD)[:-20], "The gzip file is truncated", "preds.csv.gz"),
    Case("gzip-in-gzip", gzip.compress(gzip.compress(GOOD)), "is itself compressed", "preds.csv.gz"),
    Case("zip-with-two-files", zipped(("a.csv", GOOD), ("b.csv", GOOD)), "it contains 2 files", "p.zip"),
    Case(
        "zip-traversal", zipped(("../../etc/preds.csv", GOOD)), "unsafe path '../../etc/preds.csv'", "p.zip"
    ),
    Case("zip-only-a-folder", zipped(("folder/", b"")), "it contains 0 files", "p.zip"),
    Case(
        "zip-with-empty-file",
        zipped(("preds.csv", b"")),
        "The compressed file contains an empty file.",
        "p.zip",
    ),
    Case("zip-bomb", zipped(("preds.csv", BOMB_BODY)), ROW_CAP_MESSAGE, "p.zip"),
    Case("gzip-bomb", gzip.compress(BOMB_BODY), ROW_CAP_MESSAGE, "p.csv.gz"),
    Case("gzip-line-bomb", gzip.compress(LINE_BOMB_BODY), "The decompressed size exceeds 1 MB", "p.csv.gz"),
    Case("rows-far-past-the-ids", BOMB_BODY, ROW_CAP_MESSAGE),
    Case(
        "very-long-line",
        body(rows(IDS[:-1]) + "r039," + "1" * (3 * MiB) + "\n"),
        "A line is longer than 1,048,576 bytes",
    ),
    Case(
        "too-many-columns",
        (",".join(f"c{i}" for i in range(1200)) + "\nx\n").encode(),
        "at most 1000 are allowed",
    ),
    Case(
        "formula-as-id",
        body(rows([*IDS[:-1], FORMULA_ID])),
        "1 id is not in the solution: \"=cmd|' /C calc'!A0\"",
    ),
    Case(
        "quoted-id-with-comma",
        body(rows(IDS[:-1]) + '"r039,x",0.5\n'),
        "1 id is not in the solution: 'r039,x'",
    ),
    Case(
        "unquoted-comma",
        body(rows(IDS[:-1]) + "r039,x,0.5\n"),
        "A row has 3 fields but the header has 2 columns",
    ),
    Case("unterminated-quote", body(rows(IDS[:-1]) + '"r039,0.5\n'), "A row has 1 fields"),
    Case("script-in-id", body(rows([*IDS[:-1], "<script>alert(1)</script>"])), "'<script>alert(1)</script>'"),
]

ACCEPTED = [
    Case("plain", GOOD, ""),
    Case("utf-8-bom", b"\xef\xbb\xbf" + GOOD, ""),
    Case("crlf", GOOD.replace(b"\n", b"\r\n"), ""),
    Case("bom-and-crlf", b"\xef\xbb\xbf" + GOOD.replace(b"\n", b"\r\n"), ""),
    Case("columns-swapped", ("target,id\n" + "".join(f"0.5,{i}\n" for i in IDS)).encode(), ""),
    Case("shuffled-rows", body(rows(list(reversed(IDS)))), ""),
    Case("gzip", gzip.compress(GOOD), "", "preds.csv.gz"),
    Case("zip-with-macos-junk", zipped(("preds.csv", GOOD), ("__MACOSX/._preds.csv", b"junk")), "", "p.zip"),
    Case("no-final-newline", GOOD.rstrip(b"\n"), ""),
]


@pytest.fixture
def small_decompression_cap(settings):
    settings.HOLDOUT_MAX_DECOMPRESSED_BYTES = TEST_DECOMPRESSED_CAP


@pytest.fixture(autouse=True)
def _no_rate_limit(settings):
    # This file makes more than a minute's worth of submissions if the rate limiter is installed.
    settings.HOLDOUT_RATELIMIT_SUBMIT = ""


def _post(client, competition, case: Case, capture):
    with capture(execute=True):
        return client.post(
            reverse("competition_submit", args=[competition.slug]),
            {"file": SimpleUploadedFile(case.name, case.data), "description": case.id},
        )


@pytest.mark.parametrize("case", HOSTILE, ids=lambda c: c.id)
def test_hostile_file_fails_with_a_specific_message_and_costs_nothing(
    case,
    client,
    learner,
    joined,
    competition,
    eager_celery,
    small_decompression_cap,
    django_capture_on_commit_callbacks,
):
    client.force_login(learner)
    response = _post(client, competition, case, django_capture_on_commit_callbacks)
    assert response.status_code == 302, response.content.decode()[:500]

    submission = Submission.objects.get(team=joined.team)
    assert submission.status == Submission.Status.FAILED
    assert case.expect in submission.error_message
    assert submission.error_message != services.INTERNAL_ERROR_MESSAGE
    lowered = submission.error_message.lower()
    assert "public" not in lowered and "private" not in lowered
    assert submission.public_score is None and submission.private_score is None
    assert submission.attempts == 1

    quota = selectors.submission_quota(joined.team)
    assert (quota.used_today, quota.used_total) == (0, 0)

    page = client.get(reverse("competition_submissions", args=[competition.slug]))
    assert page.status_code == 200
    html = page.content.decode()
    assert escape(submission.error_message) in html
    status = client.get(reverse("submission_status", args=[competition.slug, submission.pk])).json()
    assert (status["status"], status["error_message"]) == ("failed", submission.error_message)


def test_formula_and_markup_in_messages_are_escaped(
    client, learner, joined, competition, eager_celery, django_capture_on_commit_callbacks
):
    client.force_login(learner)
    hostile = body(rows(["<img src=x onerror=alert(1)>", FORMULA_ID, *IDS[2:]]))
    _post(client, competition, Case("markup", hostile, ""), django_capture_on_commit_callbacks)
    message = Submission.objects.get().error_message
    assert "<img src=x onerror=alert(1)>" in message
    html = client.get(reverse("competition_submissions", args=[competition.slug])).content.decode()
    assert escape(message) in html
    assert "<img src=x" not in html
    assert "|' /C calc'" not in html


@pytest.mark.parametrize("case", ACCEPTED, ids=lambda c: c.id)
def test_common_variants_of_a_valid_file_are_scored(
    case, client, learner, joined, competition, eager_celery, django_capture_on_commit_callbacks
):
    client.force_login(learner)
    _post(client, competition, case, django_capture_on_commit_callbacks)
    submission = Submission.objects.get(team=joined.team)
    assert (submission.status, submission.error_message) == (Submission.Status.SCORED, "")
    assert submission.public_score == 0.5  # constant predictions: an AUC of exactly one half
    assert selectors.submission_quota(joined.team).used_today == 1


# --- refused before any submission exists (the form and the service) ----------------------------


@pytest.mark.parametrize(
    ("case", "message"),
    [
        (Case("empty", b"", ""), "The submitted file is empty."),
        (Case("wrong-extension", GOOD, "", "preds.xlsx"), "Upload a .csv file"),
        (Case("larger-than-the-challenge-allows", GOOD + b"r0,0.5\n" * 200_000, ""), "is larger than 1.0 MB"),
    ],
    ids=lambda v: v.id if isinstance(v, Case) else "",
)
def test_refused_uploads_are_form_errors_and_store_nothing(
    case, message, client, learner, organizer, django_capture_on_commit_callbacks
):
    competition = make_competition(organizer, slug="tiny", max_upload_mb=1)
    participation = services.competition_join(user=learner, competition=competition)
    client.force_login(learner)
    response = _post(client, competition, case, django_capture_on_commit_callbacks)
    assert response.status_code == 400
    assert escape(message) in response.content.decode()
    assert not Submission.objects.exists()
    assert selectors.submission_quota(participation.team).used_total == 0


# --- label targets ---------------------------------------------------------------------------------

ANIMALS = ["bird", "cat", "dog"]
LABEL_IDS = [f"a{i:02d}" for i in range(30)]
LABEL_SOLUTION = (
    "id,target\n" + "".join(f"{i},{ANIMALS[n % 3]}\n" for n, i in enumerate(LABEL_IDS))
).encode()


def label_rows(labels: list[str]) -> bytes:
    return (
        "id,target\n" + "".join(f"{i},{lab}\n" for i, lab in zip(LABEL_IDS, labels, strict=True))
    ).encode()


@pytest.mark.parametrize(
    "case",
    [
        Case("unknown-class", label_rows(["fish"] + ANIMALS * 9 + ["bird", "cat"]), "'fish'"),
        Case("class-in-wrong-case", label_rows(["Cat"] * 30), "not a known class"),
        Case("empty-label", label_rows([""] + ["cat"] * 29), "1 row has an empty value in column 'target'"),
        Case(
            "probabilities-instead-of-labels",
            label_rows(["0.7"] * 30),
            "the known classes are 'bird', 'cat', 'dog'",
        ),
        Case(
            "probability-columns",
            ("id,bird,cat,dog\n" + "".join(f"{i},0.2,0.3,0.5\n" for i in LABEL_IDS)).encode(),
            "missing column(s) 'target'",
        ),
    ],
    ids=lambda c: c.id,
)
def test_label_challenge_rejects_bad_labels(
    case, client, learner, organizer, eager_celery, django_capture_on_commit_callbacks
):
    competition = make_competition(organizer, slug="animals", metric="accuracy", solution=LABEL_SOLUTION)
    participation = services.competition_join(user=learner, competition=competition)
    client.force_login(learner)
    _post(client, competition, case, django_capture_on_commit_callbacks)
    submission = Submission.objects.get(team=participation.team)
    assert submission.status == Submission.Status.FAILED
    assert case.expect in submission.error_message
    assert "public" not in submission.error_message.lower()
    assert "private" not in submission.error_message.lower()
    assert selectors.submission_quota(participation.team).used_total == 0


def test_label_challenge_scores_valid_labels(
    client, learner, organizer, eager_celery, django_capture_on_commit_callbacks
):
    competition = make_competition(organizer, slug="animals", metric="accuracy", solution=LABEL_SOLUTION)
    participation = services.competition_join(user=learner, competition=competition)
    client.force_login(learner)
    _post(client, competition, Case("exact", LABEL_SOLUTION, ""), django_capture_on_commit_callbacks)
    submission = Submission.objects.get(team=participation.team)
    assert (submission.status, submission.public_score, submission.private_score) == ("scored", 1.0, 1.0)


# --- arbitrary bytes ------------------------------------------------------------------------------

_csv_cell = st.one_of(
    st.sampled_from(IDS),
    st.sampled_from(["0.5", "1", "0", "-1", "nan", "inf", "", " ", '"', '""', "1e309", "0x10", "é", "\x00"]),
    st.text(max_size=8),
)
_csv_like = st.lists(st.lists(_csv_cell, min_size=0, max_size=4), max_size=45).map(
    lambda table: ("\n".join(",".join(row) for row in [["id", "target"], *table]) + "\n").encode()
)
_prefix = st.sampled_from([b"", b"\xef\xbb\xbf", b"\x1f\x8b", b"PK\x03\x04", b"\xff\xfe", b"%PDF"])
_payloads = st.one_of(
    st.binary(max_size=2048), st.tuples(_prefix, _csv_like).map(b"".join), _csv_like.map(gzip.compress)
)


@pytest.fixture(scope="module")
def prepared_solution(tmp_path_factory):
    from tests.factories import binary_solution_csv
    from workers.engine import prepare_solution

    folder = tmp_path_factory.mktemp("hostile-solution")
    (folder / "solution.csv").write_bytes(binary_solution_csv())
    prepare_solution(
        folder / "solution.csv",
        folder / "prepared.parquet",
        id_column="id",
        target_column="target",
        metric="roc_auc",
        public_fraction=0.3,
        seed=0,
    )
    return folder / "prepared.parquet"


@hypothesis_settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=_payloads)
def test_engine_answers_any_bytes_with_a_score_or_a_scoring_error(data, prepared_solution, tmp_path):
    path = tmp_path / "submission"
    path.write_bytes(data)
    try:
        result = score_submission(path, prepared_solution, metric="roc_auc")
    except ScoringError as exc:
        message = str(exc)
        assert message and "public" not in message.lower() and "private" not in message.lower()
    else:
        assert 0.0 <= result.public_score <= 1.0 and 0.0 <= result.private_score <= 1.0


@hypothesis_settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=_payloads)
def test_scoring_service_never_leaves_a_row_scoring(data, joined, learner, competition):
    submission = Submission(
        competition=competition, team=joined.team, submitted_by=learner, original_name="x.csv"
    )
    submission.file.save("upload", ContentFile(data), save=False)
    submission.size = len(data)
    submission.save()
    services.submission_score(submission.pk)
    submission.refresh_from_db()
    assert submission.status in (Submission.Status.SCORED, Submission.Status.FAILED)
    # The catch-all message would mean an unexpected exception inside the engine.
    assert submission.error_message != services.INTERNAL_ERROR_MESSAGE


# --- spreadsheet formulas in exports --------------------------------------------------------------


def test_learner_text_in_csv_exports_cannot_become_a_formula(client, learner, joined, competition):
    from competitions.services import teams

    teams.team_rename(user=learner, competition=competition, name='=HYPERLINK("http://x.example","win")')
    Submission.objects.create(
        competition=competition,
        team=joined.team,
        submitted_by=learner,
        file="submissions/x",
        original_name="p.csv",
        description="@SUM(1+1)*cmd|' /C calc'!A0",
        status=Submission.Status.SCORED,
        public_score=0.7,
        private_score=0.7,
    )
    client.force_login(learner)
    for url in (
        reverse("leaderboard_csv", args=[competition.slug]),
        reverse("my_submissions_csv", args=[competition.slug]),
    ):
        text = client.get(url).content.decode()
        cells = [cell for row in csv.reader(io.StringIO(text)) for cell in row]
        assert not [c for c in cells if c[:1] in ("=", "+", "-", "@")], (url, text)
