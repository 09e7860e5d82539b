"""The official Kaggle CLI (kaggle 2.x with kagglesdk) against a live Holdout.

Every command runs the real `kaggle` program in a subprocess, configured as a learner would:
KAGGLE_API_ENVIRONMENT=LOCALHOST makes it call http://localhost/api/v1/..., and HTTP_PROXY sends
those requests (in absolute form) to the live server. Scoring runs in the live server's thread
when the submission commits (eager Celery), so these tests need neither Redis nor PostgreSQL and
run on SQLite under a plain `make test`.
"""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from django.core.files.base import ContentFile

from competitions import services
from competitions.api_keys import api_key_create
from competitions.models import Competition, DataFile, Submission
from tests.factories import make_competition, make_user, perfect_submission

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

CLI_TIMEOUT = 90
TRAIN = b"id,feature\nr000,0.5\nr001,0.25\n"


@pytest.fixture(scope="session")
def integration_services() -> str:
    """Overrides tests/integration/conftest.py's check for Redis and PostgreSQL: nothing here uses them."""
    return ""


class KaggleCli:
    def __init__(self, server_url: str, home: Path, username: str, key: str) -> None:
        self.home = home
        self.workdir = home / "work"
        self.workdir.mkdir(parents=True)
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("KAGGLE_")
            and k.lower() not in {"http_proxy", "https_proxy", "no_proxy", "all_proxy"}
        }
        env.update(
            HOME=str(home),
            KAGGLE_CONFIG_DIR=str(home / ".kaggle"),
            KAGGLE_API_ENVIRONMENT="LOCALHOST",
            # requests reads the lowercase name first; set both so neither can point elsewhere.
            HTTP_PROXY=server_url,
            http_proxy=server_url,
            KAGGLE_USERNAME=username,
            KAGGLE_KEY=key,
            PYTHONUNBUFFERED="1",
        )
        self.env = env

    def run(self, *args: str, ok: bool = True, **env: str) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [sys.executable, "-m", "kaggle", *args],
            cwd=self.workdir,
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
        )
        if ok and result.returncode != 0:
            pytest.fail(
                f"kaggle {' '.join(args)} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
            )
        return result


@pytest.fixture
def world(live_server, tmp_path, eager_celery):
    organizer = make_user("olga", is_staff=True)
    learner = make_user("lena")
    competition = make_competition(organizer, title="Customer churn")
    DataFile.objects.create(competition=competition, file=ContentFile(TRAIN, name="train.csv"))
    services.competition_generate_sample_submission(competition)
    services.competition_join(user=learner, competition=competition)
    key = api_key_create(learner)
    cli = KaggleCli(live_server.url, tmp_path / "home", learner.username, key)
    return competition, learner, cli


def test_list_files_and_download(world):
    competition, _, cli = world

    listed = cli.run("competitions", "list").stdout
    assert "churn" in listed

    files = cli.run("competitions", "files", "-c", "churn").stdout
    assert "train.csv" in files and "sample_submission.csv" in files

    cli.run("competitions", "download", "-c", "churn", "-p", "all")
    with zipfile.ZipFile(cli.workdir / "all" / "churn.zip") as archive:
        assert sorted(archive.namelist()) == ["sample_submission.csv", "train.csv"]
        assert archive.read("train.csv") == TRAIN

    cli.run("competitions", "download", "-c", "churn", "-f", "train.csv", "-p", "one")
    assert (cli.workdir / "one" / "train.csv").read_bytes() == TRAIN


def test_submit_wait_submissions_and_leaderboard(world):
    competition, learner, cli = world
    (cli.workdir / "preds.csv").write_bytes(perfect_submission(competition))

    submitted = cli.run(
        "competitions", "submit", "-c", "churn", "-f", "preds.csv", "-m", "first try", "--wait"
    ).stdout
    submission = Submission.objects.get()
    assert f"Submission ref: {submission.pk}" in submitted
    assert "Public score: 1.00000" in submitted
    assert "Successfully submitted to Customer churn" in submitted
    assert (submission.status, submission.description, submission.submitted_by) == (
        "scored",
        "first try",
        learner,
    )

    listed = cli.run("competitions", "submissions", "-c", "churn").stdout
    assert "preds.csv" in listed and "first try" in listed and "COMPLETE" in listed

    board = cli.run("competitions", "leaderboard", "-c", "churn", "--show").stdout
    assert "lena" in board and "1.00000" in board

    cli.run("competitions", "leaderboard", "-c", "churn", "--download", "-p", "board")
    with zipfile.ZipFile(cli.workdir / "board" / "churn.zip") as archive:
        (name,) = archive.namelist()
        rows = archive.read(name).decode().splitlines()
    assert rows[0].startswith("Rank,TeamId,TeamName") and ",lena," in rows[1]


def test_broken_file_ends_as_error_with_holdouts_message(world):
    _, _, cli = world
    (cli.workdir / "broken.csv").write_text("id,wrong\nr000,1\n")

    result = cli.run(
        "competitions", "submit", "-c", "churn", "-f", "broken.csv", "-m", "oops", "--wait", ok=False
    )

    submission = Submission.objects.get()
    assert submission.status == Submission.Status.FAILED and submission.error_message
    assert result.returncode == 1
    assert f"Submission {submission.pk} failed to score" in result.stderr
    # The engine's message, as Holdout stored it (its first line is enough to recognise it).
    assert submission.error_message.splitlines()[0] in result.stderr

    listed = cli.run("competitions", "submissions", "-c", "churn").stdout
    assert "ERROR" in listed


def test_daily_limit_message_reaches_the_learner(world):
    competition, _, cli = world
    Competition.objects.filter(pk=competition.pk).update(daily_limit=1)
    (cli.workdir / "preds.csv").write_bytes(perfect_submission(competition))
    cli.run("competitions", "submit", "-c", "churn", "-f", "preds.csv", "-m", "one")

    refused = cli.run("competitions", "submit", "-c", "churn", "-f", "preds.csv", "-m", "two", ok=False)

    assert refused.returncode == 1
    assert "Your team has used all 1 submissions for today (UTC)" in refused.stderr
    assert Submission.objects.count() == 1


def test_wrong_key_is_refused(world):
    _, _, cli = world

    result = cli.run("competitions", "files", "-c", "churn", ok=False, KAGGLE_KEY="0" * 32)

    assert result.returncode == 1
    # The CLI answers a 401 with its own sign-in help rather than the server's message.
    assert "Authentication required" in result.stdout
    assert "train.csv" not in result.stdout


def test_outsider_cannot_download_or_submit(world, tmp_path):
    competition, _, _ = world
    outsider = make_user("otto")
    cli = KaggleCli(world[2].env["HTTP_PROXY"], tmp_path / "otto", "otto", api_key_create(outsider))
    (cli.workdir / "preds.csv").write_bytes(perfect_submission(competition))

    download = cli.run("competitions", "download", "-c", "churn", ok=False)
    submit = cli.run("competitions", "submit", "-c", "churn", "-f", "preds.csv", "-m", "x", ok=False)

    assert download.returncode == 1 and "Join the competition" in download.stderr
    assert submit.returncode == 1 and "Join the competition" in submit.stderr
    assert not Submission.objects.exists()
