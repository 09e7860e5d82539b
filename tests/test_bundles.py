"""Bundles: export → import round-trips a challenge exactly; a bad bundle lists every problem."""

import json
import zipfile

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError

from competitions import services
from competitions.bundles import export_competition, import_competition
from competitions.models import Competition

pytestmark = pytest.mark.django_db


def test_round_trip_is_exact(competition, tmp_path):
    services.competition_generate_sample_submission(competition)
    competition.overview = "# Welcome\n\nPredict churn."
    competition.save()
    bundle = tmp_path / "churn.zip"
    call_command("export_competition", competition.slug, str(bundle))

    original = {
        f: getattr(competition, f)
        for f in (
            "title",
            "metric",
            "public_fraction",
            "split_seed",
            "overview",
            "deadline_at",
            "daily_limit",
            "solution_info",
        )
    }
    files = {f.name: f.file.read() for f in competition.data_files.all()}
    with competition.solution.open("rb") as fh:
        solution = fh.read()
    competition.delete()

    call_command("import_competition", str(bundle))
    copy = Competition.objects.get(slug="churn")
    assert {f: getattr(copy, f) for f in original} == original
    assert {f.name: f.file.read() for f in copy.data_files.all()} == files
    with copy.solution.open("rb") as fh:
        assert fh.read() == solution
    # Exporting the copy gives the same manifest: nothing drifted.
    again = tmp_path / "again.zip"
    export_competition(copy, again)
    manifests = [json.loads(zipfile.ZipFile(p).read("manifest.json")) for p in (bundle, again)]
    assert manifests[0] == manifests[1]


def test_import_reports_every_problem_at_once(competition, tmp_path):
    bundle = tmp_path / "b.zip"
    export_competition(competition, bundle)
    manifest = json.loads(zipfile.ZipFile(bundle).read("manifest.json"))
    manifest["settings"]["metric"] = "no-such-metric"
    manifest["settings"]["daily_limit"] = 0
    manifest["data_files"] = [{"name": "ghost.csv", "description": ""}]
    broken = tmp_path / "broken.zip"
    with zipfile.ZipFile(bundle) as src, zipfile.ZipFile(broken, "w") as dst:
        for item in src.infolist():
            if item.filename != "manifest.json":
                dst.writestr(item, src.read(item))
        dst.writestr("manifest.json", json.dumps(manifest))
    with pytest.raises(ValidationError) as exc:
        import_competition(broken)
    text = " ".join(exc.value.messages)
    assert "slug" in text  # the original still exists
    assert "metric" in text
    assert "daily_limit" in text
    assert "ghost.csv" in text
    with pytest.raises(CommandError, match="ghost.csv"):
        call_command("import_competition", str(broken))


def test_unsafe_and_foreign_zips_are_refused(tmp_path, db):
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../../etc/passwd", "x")
    with pytest.raises(ValidationError, match="unsafe paths"):
        import_competition(evil)
    not_zip = tmp_path / "x.zip"
    not_zip.write_text("hello")
    with pytest.raises(ValidationError, match="not a readable zip"):
        import_competition(not_zip)
