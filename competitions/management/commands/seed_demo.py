"""Seed the demo: four challenges built from data sets scikit-learn ships, and two accounts.

Three take prediction files (binary ROC AUC, multiclass accuracy, regression RMSE; one already
closed so its private board shows); the fourth, digits, is a model challenge.

Idempotent: running it again leaves existing challenges and accounts as they are.
"""

import io
import os
import shutil
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import pandas as pd
from django.core.files.base import ContentFile
from django.core.management.base import BaseCommand
from django.utils import timezone
from sklearn import datasets

from competitions import services
from competitions.api_keys import api_key_create
from competitions.models import Competition, DataFile, Submission, User

ORGANIZER = ("organizer", "organizer@example.com", "holdout-organizer")
LEARNER = ("learner", "learner@example.com", "holdout-learner")
DEMO_PEERS = ["ada", "alan", "grace", "katherine"]


@dataclass(frozen=True)
class DemoChallenge:
    slug: str
    title: str
    subtitle: str
    loader: str
    metric: str
    target_kind: str  # "binary", "multiclass" or "regression"
    closed: bool
    overview: str
    kind: str = Competition.Kind.PREDICTIONS


CHALLENGES = [
    DemoChallenge(
        slug="breast-cancer",
        title="Benign or malignant?",
        subtitle="Predict the probability that a breast tumour is malignant from 30 cell measurements.",
        loader="load_breast_cancer",
        metric="roc_auc",
        target_kind="binary",
        closed=False,
        overview=(
            "Each row describes cell nuclei measured in a digitised image of a fine-needle "
            "aspirate of a breast mass (the Wisconsin diagnostic data set).\n\n"
            "**Your task:** for every row of `test.csv`, predict the probability that the tumour "
            "is malignant (`target` = 1)."
        ),
    ),
    DemoChallenge(
        slug="wine-cultivars",
        title="Which cultivar made this wine?",
        subtitle="Classify Italian wines into three cultivars from their chemical analysis.",
        loader="load_wine",
        metric="accuracy",
        target_kind="multiclass",
        closed=True,
        overview=(
            "Thirteen chemical measurements of wines grown in the same region of Italy by three "
            "different cultivators.\n\n**Your task:** predict the cultivar (`0`, `1` or `2`) of "
            "each wine in `test.csv`.\n\nThis challenge has ended: its private leaderboard is final. "
            "It stays open for practice: late submissions are scored on a separate board."
        ),
    ),
    DemoChallenge(
        slug="diabetes-progression",
        title="Diabetes progression in one year",
        subtitle="Predict a quantitative measure of disease progression from ten baseline variables.",
        loader="load_diabetes",
        metric="rmse",
        target_kind="regression",
        closed=False,
        overview=(
            "Ten baseline variables (age, sex, body mass index, blood pressure and six blood serum "
            "measurements) for 442 diabetes patients.\n\n**Your task:** predict `target`, a "
            "measure of disease progression one year after baseline."
        ),
    ),
]

DIGITS = DemoChallenge(
    slug="digits-model",
    title="Handwritten digits: upload a model",
    subtitle="A model challenge: train a Keras model on 8×8 digit images; Holdout runs it on hidden ones.",
    loader="load_digits",
    metric="accuracy",
    target_kind="multiclass",
    closed=False,
    kind=Competition.Kind.MODEL,
    overview=(
        "Each row is an 8×8 image of a handwritten digit, flattened to 64 pixel intensities "
        "(0–16).\n\n**This is a model challenge:** you never see the test images. Train a Keras "
        'model on `train.csv`, save it with `model.save("model.keras")` and upload the file. '
        "Holdout runs it on the hidden test images and scores its predictions by accuracy."
    ),
)
CHALLENGES.append(DIGITS)

STARTER = """# Train a small Keras model on train.csv and save it for upload.
# pip install tensorflow pandas   (Keras 3 comes with TensorFlow 2.16+)
import keras
import pandas as pd

train = pd.read_csv("train.csv")
x = train.drop(columns=["id", "target"]).to_numpy("float32")  # 64 pixel values, 0-16
y = train["target"].to_numpy()

model = keras.Sequential([
    keras.Input((64,)),
    # The hidden test features arrive exactly like train.csv's: scale inside the model.
    keras.layers.Rescaling(1 / 16),
    keras.layers.Dense(64, activation="relu"),
    keras.layers.Dense(10, activation="softmax"),  # one probability per digit 0-9
])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x, y, epochs=30, validation_split=0.2, verbose=2)
model.save("model.keras")  # upload this file on the Submit tab
"""

RULES = """1. One account per person; no sharing code or predictions privately between teams.
2. You may submit at most the daily limit shown on the Submit tab (the count resets at midnight UTC).
3. External data is not allowed.
4. The private leaderboard decides the final ranking. Be wary of overfitting the public one."""


class Command(BaseCommand):
    help = "Create the demo challenges and accounts (safe to run again)."

    def handle(self, *args, **options) -> None:
        organizer = self._user(*ORGANIZER, is_staff=True, is_superuser=True)
        learner = self._user(*LEARNER)
        peers = [self._user(name, f"{name}@example.com", f"holdout-{name}") for name in DEMO_PEERS]
        for spec in CHALLENGES:
            if Competition.objects.filter(slug=spec.slug).exists():
                self.stdout.write(f"  {spec.slug}: already there")
                continue
            competition = self._challenge(spec, organizer)
            if spec.kind == Competition.Kind.PREDICTIONS:
                self._peer_submissions(competition, spec, peers)
            if spec.closed:
                # Opened as a live challenge so the peers could join and submit; now it ends, and
                # keeps scoring late submissions: the practice library's first entry.
                competition.start_at = timezone.now() - timedelta(days=40)
                competition.deadline_at = timezone.now() - timedelta(days=2)
                competition.late_submissions = True
                competition.save(update_fields=["start_at", "deadline_at", "late_submissions"])
            self.stdout.write(f"  {spec.slug}: created")
        self.stdout.write(self.style.SUCCESS("Demo accounts:"))
        self.stdout.write(f"  organizer (admin at /admin/): {ORGANIZER[0]} / {ORGANIZER[2]}")
        self.stdout.write(f"  learner:                      {LEARNER[0]} / {LEARNER[2]}")
        # Demo only: a fresh key on every run, since keys are stored hashed and cannot be shown again.
        key = api_key_create(learner)
        port = os.environ.get("PORT", "8000")
        self.stdout.write(self.style.SUCCESS("The Kaggle CLI as the demo learner (pip install kaggle):"))
        self.stdout.write(
            f"  export KAGGLE_API_ENVIRONMENT=LOCALHOST HTTP_PROXY=http://127.0.0.1:{port}\n"
            f"  export KAGGLE_USERNAME={LEARNER[0]} KAGGLE_KEY={key}\n"
            "  kaggle competitions list"
        )

    def _user(self, username: str, email: str, password: str, **flags) -> User:
        user = User.objects.filter(username=username).first()
        if user is None:
            user = User.objects.create_user(username=username, email=email, password=password, **flags)
        if not user.email_verified:
            # Nobody reads the demo's example.com mail: its accounts start confirmed.
            user.email_verified_at = timezone.now()
            user.save(update_fields=["email_verified_at"])
        return user

    def _challenge(self, spec: DemoChallenge, organizer: User) -> Competition:
        bunch = getattr(datasets, spec.loader)(as_frame=True)
        frame = bunch.frame.rename(columns=lambda c: str(c).replace(" ", "_"))
        frame.insert(0, "id", np.arange(10_000, 10_000 + len(frame)))
        rng = np.random.default_rng(7)
        test_mask = rng.random(len(frame)) < 0.35
        train, test = frame[~test_mask], frame[test_mask]
        now = timezone.now()
        competition = Competition.objects.create(
            slug=spec.slug,
            kind=spec.kind,
            title=spec.title,
            subtitle=spec.subtitle,
            state=Competition.State.PUBLISHED,
            overview=spec.overview,
            evaluation=_evaluation_text(spec),
            rules=RULES,
            data_description=_data_text(spec, train, test),
            metric=spec.metric,
            start_at=now - timedelta(days=3),
            deadline_at=now + timedelta(days=60),
            public_fraction=0.3,
            daily_limit=10,
            total_limit=200,
            max_upload_mb=10,
            score_precision=5,
        )
        competition.organizers.add(organizer)
        solution = ContentFile(test[["id", "target"]].to_csv(index=False).encode(), name="solution.csv")
        prepared, info = services.solution_prepare_for(competition, solution)
        try:
            services.competition_set_solution(
                competition, source=solution, prepared=prepared, info=info, original_name="solution.csv"
            )
        finally:
            shutil.rmtree(prepared.parent, ignore_errors=True)
        public_files = [("train.csv", train.to_csv(index=False).encode(), "Training rows with their target.")]
        if spec.kind == Competition.Kind.MODEL:
            self._hidden_features(competition, test.drop(columns=["target"]))
            public_files.append(
                ("starter.py", STARTER.encode(), "Trains a small Keras model and saves model.keras.")
            )
        else:
            test_csv = test.drop(columns=["target"]).to_csv(index=False).encode()
            public_files.append(("test.csv", test_csv, "Test rows: predict their target."))
        for name, body, description in public_files:
            data = DataFile(
                competition=competition, name=name, description=description, is_training=name == "train.csv"
            )
            data.file.save(name, ContentFile(body), save=False)
            data.save()
        if spec.kind == Competition.Kind.PREDICTIONS:
            services.competition_generate_sample_submission(competition)
        return competition

    def _hidden_features(self, competition: Competition, features: pd.DataFrame) -> None:
        upload = ContentFile(features.to_csv(index=False).encode(), name="test_features.csv")
        local, info = services.features_validate(upload, competition=competition)
        try:
            services.competition_set_features(competition, local=local, info=info, original_name=upload.name)
        finally:
            shutil.rmtree(local.parent, ignore_errors=True)

    def _peer_submissions(self, competition: Competition, spec: DemoChallenge, peers: list[User]) -> None:
        """A few scored entries from demo peers, so both boards have something to show."""
        test_ids = _solution_frame(competition)
        rng = np.random.default_rng(len(spec.slug))
        for offset, peer in enumerate(peers):
            participation = services.competition_join(user=peer, competition=competition)
            noise = 0.15 + 0.2 * offset
            body = _noisy_predictions(test_ids, spec.target_kind, noise, rng)
            created = timezone.now() - timedelta(days=3, hours=-offset)
            submission = Submission(
                competition=competition,
                team=participation.team,
                submitted_by=peer,
                original_name=f"{peer.username}-model.csv",
                size=len(body),
                description=f"Demo entry (noise {noise:.2f})",
                created_at=created,
                queued_at=created,
            )
            submission.file.save("upload", ContentFile(body), save=False)
            submission.save()
            services.submission_score(submission.pk)


def _solution_frame(competition: Competition) -> pd.DataFrame:
    with competition.solution.open("rb") as fh:
        return pd.read_csv(io.BytesIO(fh.read()), dtype={"id": str})


def _noisy_predictions(solution: pd.DataFrame, kind: str, noise: float, rng: np.random.Generator) -> bytes:
    y = solution["target"].to_numpy()
    if kind == "binary":
        pred = np.clip(0.25 + 0.5 * y + rng.normal(0, noise, len(y)), 0, 1)
    elif kind == "multiclass":
        flip = rng.random(len(y)) < noise
        pred = np.where(flip, rng.integers(0, 3, len(y)), y)
    else:
        pred = y + rng.normal(0, 150 * noise, len(y))
    return pd.DataFrame({"id": solution["id"], "target": pred}).to_csv(index=False).encode()


def _evaluation_text(spec: DemoChallenge) -> str:
    what = {
        "binary": "a probability between 0 and 1 that `target` is 1",
        "multiclass": "the class label (`0`, `1` or `2`)",
        "regression": "a number",
    }[spec.target_kind]
    return (
        f"Submissions are scored with the metric shown below. For each `id` in `test.csv`, "
        f"predict {what}. The file must be a CSV with a header row:\n\n"
        f"```\nid,target\n10003,{'0.72' if spec.target_kind == 'binary' else '1'}\n...\n```\n\n"
        "The public leaderboard is computed on about 30% of the test rows; the private "
        "leaderboard, revealed at the deadline, on the other 70%."
    )


def _data_text(spec: DemoChallenge, train: pd.DataFrame, test: pd.DataFrame) -> str:
    features = ", ".join(f"`{c}`" for c in train.columns if c not in ("id", "target"))
    if spec.kind == Competition.Kind.MODEL:
        files = (
            f"- `train.csv`: {len(train)} rows with the features and `target`.\n"
            f"- `starter.py`: trains a small Keras model on `train.csv` and saves `model.keras`.\n\n"
            f"The {len(test)} test rows stay hidden: your model is run on them."
        )
    else:
        files = (
            f"- `train.csv`: {len(train)} rows with the features and `target`.\n"
            f"- `test.csv`: {len(test)} rows with the features only.\n"
            f"- `sample_submission.csv`: a correctly formatted submission."
        )
    return f"{files}\n\nFeatures: {features}.\n\nSource: scikit-learn's `{spec.loader}` data set."
