"""Model challenges through the platform: hidden features in the admin, .keras uploads scored in
the sandbox, clear refusals. The sandbox itself is tested in test_modelrun.py."""

import importlib.util

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils.html import escape

from competitions import services
from competitions.models import Competition, Submission
from tests import modelrun_helpers as mh
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db
needs_tf = pytest.mark.skipif(
    importlib.util.find_spec("tensorflow") is None, reason="TensorFlow is not installed"
)

N, FEATURES, CLASSES = 30, 4, 3


@pytest.fixture
def x():
    return np.random.default_rng(3).normal(size=(N, FEATURES)).astype("float32")


@pytest.fixture
def model_competition(organizer, x, tmp_path):
    ids = mh.ids_for(N)
    labels = [i % CLASSES for i in range(N)]
    solution = "id,target\n" + "".join(f"{i},{y}\n" for i, y in zip(ids, labels, strict=True))
    return mh.model_competition_with(organizer, solution, ids, x, tmp_path)


def submit_model(client, competition, path, name="model.keras"):
    return client.post(
        reverse("competition_submit", args=[competition.slug]),
        {"file": SimpleUploadedFile(name, path.read_bytes()), "description": "m"},
    )


def test_features_must_cover_exactly_the_solution_ids(model_competition, x, tmp_path):
    wrong = mh.features_csv(tmp_path / "w.csv", [f"other{i}" for i in range(N)], x)
    with pytest.raises(Exception) as exc:
        services.features_validate(
            SimpleUploadedFile("w.csv", wrong.read_bytes()), competition=model_competition
        )
    assert "other" in " ".join(exc.value.messages)


def test_data_tab_states_the_input_and_output(client, model_competition, learner, joined):
    client.login(username=learner.username, password=PASSWORD)
    page = client.get(reverse("competition_data", args=[model_competition.slug])).content.decode()
    assert "(4,)" in page
    spec = model_competition.model_output_spec
    assert spec.startswith("3 ")  # three classes: one output each
    assert escape(spec) in page
    assert "safe_mode" in page


def test_only_keras_files_are_accepted(client, model_competition, learner, tmp_path):
    services.competition_join(user=learner, competition=model_competition)
    client.login(username=learner.username, password=PASSWORD)
    h5 = tmp_path / "model.h5"
    h5.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    response = submit_model(client, model_competition, h5, name="model.h5")
    assert response.status_code == 400
    assert b"Upload a .keras file" in response.content
    assert not Submission.objects.exists()


@needs_tf
def test_a_good_model_is_scored_on_the_hidden_features(
    client, model_competition, learner, x, tmp_path, eager_celery, django_capture_on_commit_callbacks
):
    services.competition_join(user=learner, competition=model_competition)
    client.login(username=learner.username, password=PASSWORD)
    model = mh.save_dense(tmp_path / "model.keras", inputs=FEATURES, outputs=CLASSES)
    with django_capture_on_commit_callbacks(execute=True):
        assert submit_model(client, model_competition, model).status_code == 302
    sub = Submission.objects.get()
    assert sub.status == Submission.Status.SCORED, sub.error_message
    predicted = mh.predict_locally(model, x).argmax(axis=1)
    truth = np.array([i % CLASSES for i in range(N)])
    overall = (predicted == truth).mean()
    info = model_competition.solution_info
    # Public and private accuracies average (weighted by rows) to the overall accuracy.
    combined = (sub.public_score * info["public_count"] + sub.private_score * info["private_count"]) / N
    assert combined == pytest.approx(overall)


@needs_tf
def test_a_lambda_layer_model_fails_with_its_reason_and_costs_nothing(
    client, model_competition, learner, joined, tmp_path, eager_celery, django_capture_on_commit_callbacks
):
    services.competition_join(user=learner, competition=model_competition)
    client.login(username=learner.username, password=PASSWORD)
    model = mh.save_lambda_model(tmp_path / "lambda.keras")
    with django_capture_on_commit_callbacks(execute=True):
        submit_model(client, model_competition, model)
    sub = Submission.objects.get(competition=model_competition)
    assert sub.status == Submission.Status.FAILED
    assert "Lambda" in sub.error_message


def test_a_renamed_zip_is_refused_without_starting_tensorflow(
    client, model_competition, learner, tmp_path, eager_celery, django_capture_on_commit_callbacks
):
    services.competition_join(user=learner, competition=model_competition)
    client.login(username=learner.username, password=PASSWORD)
    fake = mh.write_zip(tmp_path / "fake.keras", {"notes.txt": b"hello"})
    with django_capture_on_commit_callbacks(execute=True):
        submit_model(client, model_competition, fake)
    sub = Submission.objects.get()
    assert sub.status == Submission.Status.FAILED
    assert "config.json" in sub.error_message or "Keras" in sub.error_message


def test_model_submissions_go_to_the_models_queue(model_competition, competition, monkeypatch):
    assert services.scoring_queue(model_competition) == "models"
    assert services.scoring_queue(competition) == "scoring"


def test_bundle_round_trip_keeps_the_hidden_features(model_competition, tmp_path):
    from competitions.bundles import export_competition, import_competition

    bundle = tmp_path / "m.zip"
    export_competition(model_competition, bundle)
    with model_competition.hidden_features.open("rb") as fh:
        features = fh.read()
    info = model_competition.features_info
    model_competition.delete()
    copy = import_competition(bundle)
    assert copy.kind == Competition.Kind.MODEL
    assert copy.features_info == info
    with copy.hidden_features.open("rb") as fh:
        assert fh.read() == features


def test_rules_tab_says_which_model_failures_count(client, model_competition, competition):
    page = client.get(reverse("competition_rules", args=[model_competition.slug])).content.decode()
    assert "a model file that cannot be loaded or run" in page
    assert "a model whose outputs on the test set are unusable" in page
    csv_page = client.get(reverse("competition_rules", args=[competition.slug])).content.decode()
    assert "its format, ids or values out of range" in csv_page and "model whose outputs" not in csv_page
    assert "counts like a scored submission" in csv_page


def test_submit_page_states_the_model_charging_rule(client, model_competition, learner):
    services.competition_join(user=learner, competition=model_competition)
    client.login(username=learner.username, password=PASSWORD)
    page = client.get(reverse("competition_submit", args=[model_competition.slug])).content.decode()
    assert "one whose outputs on the test set are unusable does" in page
    assert "Files that cannot be scored do not count" not in page


def test_engine_messages_about_model_predictions_never_reach_the_learner(
    model_competition, learner, x, tmp_path, monkeypatch
):
    # A gap in the sandbox's checks: the predictions it wrote fail in the engine, whose message
    # would name a hidden id and echo the model's output (here a copied feature value).
    services.competition_join(user=learner, competition=model_competition)
    ids = mh.ids_for(N)
    leaked = f"{x[3, 0]:.6f}"
    bad = tmp_path / "predictions.csv"
    bad.write_text("id,target\n" + "".join(f"{i},{leaked if k == 3 else 0}\n" for k, i in enumerate(ids)))
    monkeypatch.setattr(
        "competitions.services.scoring._predictions_from_model", lambda competition, model, workdir: bad
    )
    sub = services.submission_create(
        user=learner,
        competition=model_competition,
        uploaded=SimpleUploadedFile("model.keras", b"PK\x03\x04"),
        description="",
    )
    outcome = services.submission_score(sub.pk)
    sub.refresh_from_db()
    assert sub.status == Submission.Status.FAILED and outcome.message == sub.error_message
    assert sub.error_message == (
        "The model's predictions on the test set could not be scored; the model must output "
        f"{model_competition.model_output_spec}. This submission counts against your limits."
    )
    assert leaked not in sub.error_message and not any(i in sub.error_message for i in ids)
    assert sub.charged


@needs_tf
def test_a_model_whose_outputs_overflow_is_refused_by_count_and_charged(
    client, model_competition, learner, x, tmp_path, eager_celery, django_capture_on_commit_callbacks
):
    services.competition_join(user=learner, competition=model_competition)
    client.login(username=learner.username, password=PASSWORD)
    model = mh.save_copying_model(tmp_path / "copy.keras", inputs=FEATURES, outputs=CLASSES, scale=3e38)
    with django_capture_on_commit_callbacks(execute=True):
        submit_model(client, model_competition, model)
    sub = Submission.objects.get()
    with np.errstate(over="ignore"):
        overflowing = int((np.abs(x[:, :CLASSES] * np.float32(3e38)) == np.inf).any(axis=1).sum())
    assert sub.status == Submission.Status.FAILED
    assert sub.error_message == (
        f"The model predicted NaN or infinite values on {overflowing} of {N} test rows; "
        "check its weights for NaN."
    )
    assert sub.charged
