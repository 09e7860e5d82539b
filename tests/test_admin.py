"""The organizer's admin: creating a challenge with its solution, actions and exports."""

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from competitions import services
from competitions.models import Competition, DataFile, Submission
from tests.factories import binary_solution_csv, perfect_submission

pytestmark = pytest.mark.django_db

ADD_URL = reverse("admin:competitions_competition_add")


def competition_form(**overrides) -> dict:
    now = timezone.now()
    data = {
        "title": "Churn",
        "slug": "churn-admin",
        "subtitle": "",
        "kind": "predictions",
        "state": "published",
        "overview": "# Hello",
        "evaluation": "",
        "rules": "Be nice.",
        "data_description": "",
        "metric": "roc_auc",
        "id_column": "id",
        "target_column": "target",
        "score_precision": "5",
        "public_fraction": "0.3",
        "split_seed": "",
        "start_at_0": (now - timedelta(days=1)).strftime("%Y-%m-%d"),
        "start_at_1": "00:00:00",
        "deadline_at_0": (now + timedelta(days=30)).strftime("%Y-%m-%d"),
        "deadline_at_1": "00:00:00",
        "daily_limit": "5",
        "total_limit": "",
        "max_upload_mb": "50",
        "team_size_limit": "5",
        "scoring_time_limit": "120",
        "final_submission_count": "2",
        "data_files-TOTAL_FORMS": "0",
        "data_files-INITIAL_FORMS": "0",
        "data_files-MIN_NUM_FORMS": "0",
        "data_files-MAX_NUM_FORMS": "1000",
    }
    data.update(overrides)
    return data


def change_form_data(admin_client, competition: Competition, **overrides) -> dict:
    data = competition_form(slug=competition.slug, **overrides)
    data["data_files-INITIAL_FORMS"] = str(competition.data_files.count())
    data["data_files-TOTAL_FORMS"] = data["data_files-INITIAL_FORMS"]
    return data


def test_create_a_challenge_with_solution_and_data_file(admin_client):
    data = competition_form(
        solution_upload=SimpleUploadedFile("labels.csv", binary_solution_csv(n=100)),
        **{
            "data_files-TOTAL_FORMS": "1",
            "data_files-0-name": "",
            "data_files-0-description": "Training data",
            "data_files-0-file": SimpleUploadedFile("train.csv", b"id,x,target\n1,2,0\n"),
        },
    )
    response = admin_client.post(ADD_URL, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    competition = Competition.objects.get(slug="churn-admin")
    assert competition.is_ready
    assert competition.solution_name == "labels.csv"
    assert competition.solution_info["public_count"] == 30
    assert competition.solution_info["private_count"] == 70
    data_file = DataFile.objects.get(competition=competition)
    assert data_file.name == "train.csv"
    assert data_file.size == len(b"id,x,target\n1,2,0\n")
    assert "train" not in data_file.file.name
    # Row counts per split and the class balance are shown to the organizer.
    page = admin_client.get(reverse("admin:competitions_competition_change", args=[competition.pk]))
    assert b"30 public, 70 private" in page.content
    assert b"<th>Class</th>" in page.content


def test_solution_problems_are_all_reported(admin_client):
    bad = b"key,target\na,1\na,7\n"
    response = admin_client.post(ADD_URL, competition_form(solution_upload=SimpleUploadedFile("s.csv", bad)))
    assert response.status_code == 200
    errors = " ".join(response.context["adminform"].form.errors["solution_upload"])
    assert "id" in errors
    assert not Competition.objects.exists()


def test_changing_the_split_needs_an_explicit_resplit(admin_client, competition):
    url = reverse("admin:competitions_competition_change", args=[competition.pk])
    before = competition.solution_info

    response = admin_client.post(url, change_form_data(admin_client, competition, public_fraction="0.5"))
    assert response.status_code == 200
    assert "Re-split" in " ".join(response.context["adminform"].form.errors["resplit"])
    competition.refresh_from_db()
    assert competition.solution_info == before

    response = admin_client.post(
        url, change_form_data(admin_client, competition, public_fraction="0.5", resplit="on")
    )
    assert response.status_code == 302
    competition.refresh_from_db()
    assert competition.solution_info["public_count"] == 20
    assert competition.split_fraction_used == 0.5


def test_changing_the_metric_reprepares_with_the_same_split(admin_client, competition):
    url = reverse("admin:competitions_competition_change", args=[competition.pk])
    before = competition.solution_info
    response = admin_client.post(url, change_form_data(admin_client, competition, metric="accuracy"))
    assert response.status_code == 302
    competition.refresh_from_db()
    assert competition.metric == "accuracy"
    assert competition.solution_info["public_count"] == before["public_count"]


def test_generate_sample_submission_action(admin_client, competition):
    changelist = reverse("admin:competitions_competition_changelist")
    response = admin_client.post(
        changelist,
        {"action": "generate_sample_submission", "_selected_action": [competition.pk]},
        follow=True,
    )
    assert b"sample_submission.csv generated" in response.content
    assert competition.data_files.filter(name="sample_submission.csv").exists()


def test_changelists_and_search(admin_client, competition, learner, joined):
    services.submission_create(
        user=learner,
        competition=competition,
        uploaded=SimpleUploadedFile("mine.csv", perfect_submission(competition)),
    )
    for name in ("competition", "submission", "team", "participation", "user"):
        url = reverse(f"admin:competitions_{name}_changelist")
        assert admin_client.get(url).status_code == 200
        assert admin_client.get(url, {"q": "lena"}).status_code == 200
    found = admin_client.get(reverse("admin:competitions_submission_changelist"), {"q": "mine"})
    assert b"mine.csv" in found.content


def test_rescore_action_and_leaderboard_exports(
    admin_client, competition, learner, joined, eager_celery, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        sub = services.submission_create(
            user=learner,
            competition=competition,
            uploaded=SimpleUploadedFile("p.csv", perfect_submission(competition)),
        )
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(
            reverse("admin:competitions_submission_changelist"),
            {"action": "rescore", "_selected_action": [sub.pk]},
        )
    sub.refresh_from_db()
    assert sub.status == Submission.Status.SCORED and sub.attempts == 2

    for board in ("public", "private"):
        url = reverse("admin:competitions_competition_leaderboard", args=[competition.pk, board])
        response = admin_client.get(url)
        assert response.status_code == 200
        lines = response.content.decode().splitlines()
        assert lines[0].startswith("rank,team")
        assert lines[1].startswith("1,lena,lena,1.00000")


def test_admin_is_staff_only(client, learner):
    client.force_login(learner)
    response = client.get(reverse("admin:competitions_competition_changelist"))
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_organizers_only_reach_their_own_challenges(client, competition, db):
    from tests.factories import make_competition, make_user

    other_organizer = make_user("oscar", is_staff=True)
    theirs = make_competition(other_organizer, slug="theirs")
    client.force_login(other_organizer)

    listing = client.get(reverse("admin:competitions_competition_changelist"))
    assert listing.status_code == 200
    assert b"theirs" in listing.content
    assert competition.slug.encode() not in listing.content
    # Another organizer's challenge, its exports and its submissions are out of reach.
    for url in (
        reverse("admin:competitions_competition_change", args=[competition.pk]),
        reverse("admin:competitions_competition_leaderboard", args=[competition.pk, "private"]),
    ):
        assert client.get(url).status_code in (302, 403, 404)
    assert client.get(reverse("admin:competitions_competition_change", args=[theirs.pk])).status_code == 200


def test_a_new_challenge_is_organized_by_its_creator(client, db):
    from tests.factories import make_user

    creator = make_user("carla", is_staff=True)
    client.force_login(creator)
    response = client.post(ADD_URL, competition_form(slug="carlas"))
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert Competition.objects.get(slug="carlas").organizers.filter(pk=creator.pk).exists()


def test_baselines_disqualification_and_rescore_history_from_the_admin(
    admin_client, admin_user, competition, learner, joined, eager_celery, django_capture_on_commit_callbacks
):
    from competitions.models import RescoreRun

    own = services.competition_join(user=admin_user, competition=competition)
    with django_capture_on_commit_callbacks(execute=True):
        mine = services.submission_create(
            user=admin_user,
            competition=competition,
            uploaded=SimpleUploadedFile("b.csv", perfect_submission(competition)),
        )
        theirs = services.submission_create(
            user=learner,
            competition=competition,
            uploaded=SimpleUploadedFile("t.csv", perfect_submission(competition)),
        )
    changelist = reverse("admin:competitions_submission_changelist")
    admin_client.post(changelist, {"action": "mark_baseline", "_selected_action": [mine.pk, theirs.pk]})
    mine.refresh_from_db(), theirs.refresh_from_db()
    assert mine.is_baseline and not theirs.is_baseline  # only your own submissions become baselines
    assert own.team_id == mine.team_id

    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(
            reverse("admin:competitions_competition_changelist"),
            {"action": "rescore_challenge", "_selected_action": [competition.pk]},
        )
    run = RescoreRun.objects.get(competition=competition)
    page = admin_client.get(reverse("admin:competitions_rescorerun_change", args=[run.pk]))
    assert b"1 \xe2\x86\x92 1" in page.content  # lena stayed first on the public board
    assert theirs.history.count() == 1


def test_bundle_export_and_import_through_the_admin(admin_client, competition):
    response = admin_client.post(
        reverse("admin:competitions_competition_changelist"),
        {"action": "export_bundle", "_selected_action": [competition.pk]},
    )
    bundle = b"".join(response.streaming_content)
    competition.delete()
    upload = SimpleUploadedFile("churn.zip", bundle)
    response = admin_client.post(reverse("admin:competitions_competition_import"), {"bundle": upload})
    assert response.status_code == 302
    assert Competition.objects.filter(slug="churn").exists()
    bad = admin_client.post(
        reverse("admin:competitions_competition_import"), {"bundle": SimpleUploadedFile("x.zip", b"nope")}
    )
    assert b"not a readable zip" in bad.content


def test_organizers_download_submission_files(admin_client, competition, learner, joined):
    sub = services.submission_create(
        user=learner, competition=competition, uploaded=SimpleUploadedFile("mine.csv", b"id,target\nr000,1\n")
    )
    response = admin_client.get(reverse("admin:competitions_submission_download", args=[sub.pk]))
    assert b"".join(response.streaming_content) == b"id,target\nr000,1\n"
    assert 'filename="mine.csv"' in response["Content-Disposition"]


def test_submission_export_neutralises_formula_usernames(admin_client, competition):
    import csv
    import io

    from tests.factories import make_submission, make_user

    names = ['=HYPERLINK("http://evil.example","x")', "+cmd", "-1+1", "@SUM(A1)"]
    for name in names:
        user = make_user(name, email=f"{len(name)}-{abs(hash(name))}@example.com")
        participation = services.competition_join(user=user, competition=competition)
        make_submission(competition, participation.team, user, 0.5, 0.5)
    response = admin_client.post(
        reverse("admin:competitions_competition_changelist"),
        {"action": "export_submissions", "_selected_action": [competition.pk]},
    )
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert sorted(row["submitted_by"] for row in rows) == sorted("'" + name for name in names)
    assert all(row["team"].startswith("'") for row in rows)


def test_a_damaged_bundle_is_a_form_error_in_the_admin(admin_client, competition, tmp_path):
    from competitions.bundles import export_competition
    from tests.test_bundles import corrupt_member

    bundle = tmp_path / "churn.zip"
    export_competition(competition, bundle)
    competition.delete()
    bad = corrupt_member(bundle, tmp_path / "bad.zip", "solution/solution.csv")
    upload = SimpleUploadedFile("bad.zip", bad.read_bytes())
    response = admin_client.post(reverse("admin:competitions_competition_import"), {"bundle": upload})
    assert response.status_code == 200
    assert "damaged" in " ".join(response.context["form"].errors["bundle"])
    assert not Competition.objects.exists()


@pytest.mark.parametrize(
    ("name", "uploaded"),
    [("sub/train.csv", "train.csv"), ("../train.csv", "train.csv"), ("", "<b>train</b>.csv")],
)
def test_data_file_names_must_be_plain_in_the_admin(admin_client, name, uploaded):
    data = competition_form(
        **{
            "data_files-TOTAL_FORMS": "1",
            "data_files-0-name": name,
            "data_files-0-description": "",
            "data_files-0-file": SimpleUploadedFile(uploaded, b"id,x\n1,2\n"),
        },
    )
    response = admin_client.post(ADD_URL, data)
    assert response.status_code == 200
    errors = response.context["inline_admin_formsets"][0].formset.errors
    assert "file name may not" in str(errors)
    assert not DataFile.objects.exists()


def test_a_rescore_that_kept_the_old_score_says_so_on_the_submission_page(
    admin_client, competition, learner, joined, monkeypatch
):
    monkeypatch.setattr("competitions.services.submissions.enqueue_scoring", lambda pk, **kw: None)
    sub = services.submission_create(
        user=learner,
        competition=competition,
        uploaded=SimpleUploadedFile("p.csv", perfect_submission(competition)),
    )
    services.submission_score(sub.pk)
    services.submissions_rescore([sub.pk])

    def broken(*args, **kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr("competitions.services.scoring.score_submission", broken)
    services.submission_score(sub.pk)
    page = admin_client.get(reverse("admin:competitions_submission_change", args=[sub.pk]))
    assert page.status_code == 200
    assert b"previous score was kept" in page.content
