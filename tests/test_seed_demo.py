"""`make demo`'s seed: four challenges from scikit-learn data, scored peer entries, accounts."""

import io
import re

import pytest
from django.core.management import call_command

from competitions import selectors
from competitions.api_keys import api_key_user
from competitions.models import Competition, Submission, User

pytestmark = pytest.mark.django_db


def test_seed_demo_builds_every_challenge_and_is_idempotent():
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    sections = {c.slug: c.list_section for c in Competition.objects.all()}
    assert sections == {
        "breast-cancer": "active",
        "wine-cultivars": "practice",
        "diabetes-progression": "active",
        "digits-model": "active",
    }
    for competition in Competition.objects.all():
        info = competition.solution_info
        assert info["public_count"] / info["row_count"] == pytest.approx(0.3, abs=0.01)
    assert not Submission.objects.exclude(status=Submission.Status.SCORED).exists()
    wine = Competition.objects.get(slug="wine-cultivars")
    assert len(selectors.private_leaderboard(wine)) == 4  # the deadline has passed
    digits = Competition.objects.get(slug="digits-model")
    assert digits.kind == Competition.Kind.MODEL and digits.features_info["input_shape"] == [64]
    assert {f.name for f in digits.data_files.all()} == {"train.csv", "starter.py"}
    # The printed key works for the demo learner, as printed for the Kaggle CLI.
    key = re.search(r"KAGGLE_KEY=(\w+)", out.getvalue()).group(1)
    assert api_key_user(key).username == "learner"

    # Nobody reads the demo's mail: its accounts are confirmed, so allow-lists work in the demo.
    assert not User.objects.filter(email_verified_at__isnull=True).exists()

    call_command("seed_demo", stdout=io.StringIO())
    assert Competition.objects.count() == 4
