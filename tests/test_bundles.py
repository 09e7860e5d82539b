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


def rebuilt(bundle, out, *, manifest=None, raw_manifest: bytes | None = None, members=None):
    """A copy of `bundle` with another manifest (a dict, or raw bytes, or none) and extra members."""
    with zipfile.ZipFile(bundle) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            if item.filename != "manifest.json":
                dst.writestr(item, src.read(item))
        if raw_manifest is None and manifest is not None:
            raw_manifest = json.dumps(manifest).encode()
        if raw_manifest is not None:
            dst.writestr("manifest.json", raw_manifest)
        for name, data in (members or {}).items():
            dst.writestr(name, data)
    return out


@pytest.fixture
def bundle(competition, tmp_path):
    path = tmp_path / "churn.zip"
    export_competition(competition, path)
    competition.delete()
    return path


def manifest_of(bundle) -> dict:
    return json.loads(zipfile.ZipFile(bundle).read("manifest.json"))


@pytest.mark.parametrize(
    "name",
    [
        "train\n.csv",
        "sub/train.csv",
        "back\\slash.csv",
        "a..b.csv",
        "..",
        ".env",
        "<b>x</b>.csv",
        'q"uote.csv',
        " padded.csv",
        "x" * 150 + ".csv",
        "zero\u200bwidth.csv",
        "",
    ],
)
def test_data_file_names_must_be_plain_file_names(bundle, tmp_path, name):
    manifest = manifest_of(bundle)
    manifest["data_files"] = [{"name": name, "description": ""}]
    bad = rebuilt(bundle, tmp_path / "bad.zip", manifest=manifest, members={f"data/{name}": b"id\n1\n"})
    with pytest.raises(ValidationError, match="Data file|unsafe paths") as exc:
        import_competition(bad)
    assert "\n" not in " ".join(exc.value.messages).replace("\\n", "")
    assert not Competition.objects.exists()


def test_a_long_data_file_description_is_refused_not_a_database_error(bundle, tmp_path):
    manifest = manifest_of(bundle)
    manifest["data_files"] = [{"name": "train.csv", "description": "d" * 400}]
    bad = rebuilt(bundle, tmp_path / "bad.zip", manifest=manifest, members={"data/train.csv": b"id\n"})
    with pytest.raises(ValidationError, match="description"):
        import_competition(bad)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe garbage", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'"text"', "JSON object"),
        (b"[" * 100000 + b"]" * 100000, "not valid JSON"),
    ],
)
def test_a_broken_manifest_is_a_clear_error(bundle, tmp_path, raw, message):
    bad = rebuilt(bundle, tmp_path / "bad.zip", raw_manifest=raw)
    with pytest.raises(ValidationError, match=message):
        import_competition(bad)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"settings": "slug"}, "settings must be a JSON object"),
        ({"dates": ["2026-01-01"]}, "dates must be a JSON object"),
        ({"data_files": {"name": "x"}}, "data_files must be a list"),
        ({"data_files": [{"name": 3}]}, "data_files must be a list"),
        ({"solution": ["x.csv"]}, "solution must be a file name"),
        ({"solution": "../../etc/passwd"}, "solution file"),
        ({"dates": {"deadline_at": "2026-13-45T00:00:00+00:00"}}, "dates.deadline_at"),
        ({"dates": {"deadline_at": 12}}, "dates.deadline_at"),
    ],
)
def test_a_malformed_manifest_is_a_clear_error(bundle, tmp_path, change, message):
    manifest = manifest_of(bundle)
    manifest.update(change)
    bad = rebuilt(bundle, tmp_path / "bad.zip", manifest=manifest)
    with pytest.raises(ValidationError, match=message):
        import_competition(bad)


def test_a_missing_manifest_is_a_clear_error(bundle, tmp_path):
    bad = rebuilt(bundle, tmp_path / "bad.zip")
    with pytest.raises(ValidationError, match="no manifest.json"):
        import_competition(bad)


def corrupt_member(bundle, out, member: str):
    """Flip bytes inside one member's data, leaving the zip's directory intact (a bad CRC)."""
    with zipfile.ZipFile(bundle) as zf:
        info = zf.getinfo(member)
    data = bytearray(bundle.read_bytes())
    # The local header is 30 bytes plus the name and extra field; the data follows.
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    for i in range(start + 2, start + min(info.compress_size, 40) - 2):
        data[i] ^= 0x5A
    out.write_bytes(bytes(data))
    return out


@pytest.mark.parametrize("member", ["manifest.json", "solution/solution.csv", "pages/rules.md"])
def test_a_corrupt_member_is_a_clear_error(bundle, tmp_path, member):
    bad = corrupt_member(bundle, tmp_path / "bad.zip", member)
    with pytest.raises(ValidationError, match="damaged") as exc:
        import_competition(bad)
    assert exc.value.messages
    assert not Competition.objects.exists()


def test_a_truncated_bundle_is_a_clear_error(bundle, tmp_path):
    data = bundle.read_bytes()
    for cut in (len(data) // 2, len(data) - 10, 22):
        bad = tmp_path / f"cut{cut}.zip"
        bad.write_bytes(data[:cut])
        with pytest.raises(ValidationError):
            import_competition(bad)


def test_bombs_and_oversized_texts_are_refused(bundle, tmp_path, monkeypatch):
    from competitions import bundles

    monkeypatch.setattr(bundles, "MAX_MEMBER_BYTES", 1024 * 1024)
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("manifest.json", "{}")
        zf.writestr("data/zeros.csv", b"0" * (2 * 1024 * 1024))
    with pytest.raises(ValidationError, match="expands to more"):
        import_competition(bomb)

    monkeypatch.setattr(bundles, "MAX_TEXT_BYTES", 1000)
    manifest = manifest_of(bundle)
    manifest["padding"] = "x" * 2000
    with pytest.raises(ValidationError, match="larger than"):
        import_competition(rebuilt(bundle, tmp_path / "big.zip", manifest=manifest))
