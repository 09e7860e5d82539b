"""Competition bundles: one zip holding a challenge's settings, pages, data files and solution.

Layout (documented in docs/bundles.md):
    manifest.json        settings, file list, and a checksum of the public/private split
    pages/overview.md, pages/evaluation.md, pages/rules.md, pages/data_description.md
    data/<name>          participant data files
    solution/<name>      the hidden solution CSV as the organizer uploaded it
    features/<name>      model challenges: the hidden test features

    split.parquet        the public/private assignment (id, public) of a random split

Random splits are secret (drawn from the operating system's random source), so the bundle
carries the assignment itself; import keeps it and checks it against the manifest's checksum,
which makes export → import exact or loudly wrong. A bundle is as secret as its solution.
"""

import hashlib
import json
import shutil
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

import pyarrow.parquet as pq
from django.core.exceptions import ValidationError
from django.core.files import File
from django.db import transaction
from django.utils.dateparse import parse_datetime

from competitions import services
from competitions.models import Competition, DataFile

FORMAT_VERSION = 1
PAGES = ("overview", "evaluation", "rules", "data_description")
SETTINGS = (
    "slug",
    "title",
    "subtitle",
    "kind",
    "state",
    "metric",
    "id_column",
    "target_column",
    "public_fraction",
    "split_seed",
    "daily_limit",
    "total_limit",
    "max_upload_mb",
    "scoring_time_limit",
    "score_precision",
    "team_size_limit",
    "final_submission_count",
    "late_submissions",
    "join_allowlist",
)
DATES = ("start_at", "entry_deadline_at", "merger_deadline_at", "deadline_at")
MAX_MEMBER_BYTES = 2 * 1024**3
SPLIT_MEMBER = "split.parquet"


def split_checksum(prepared_path: Path) -> str:
    table = pq.read_table(prepared_path, columns=["id", "public"])
    public_ids = sorted(
        i for i, p in zip(table["id"].to_pylist(), table["public"].to_pylist(), strict=True) if p
    )
    return hashlib.sha256("\n".join(public_ids).encode()).hexdigest()


def _write_split(competition: Competition, zf: zipfile.ZipFile) -> str | None:
    """Add the competition's split to the bundle as split.parquet; return its checksum."""
    if not competition.prepared_solution:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / "prepared.parquet"
        with competition.prepared_solution.open("rb") as src, open(local, "wb") as dst:
            shutil.copyfileobj(src, dst)
        split = Path(tmp) / "split.parquet"
        pq.write_table(pq.read_table(local, columns=["id", "public"]), split, compression="zstd")
        zf.write(split, SPLIT_MEMBER)
        return split_checksum(local)


def export_competition(competition: Competition, path: Path) -> None:
    manifest = {
        "format": "holdout-competition",
        "version": FORMAT_VERSION,
        "settings": {field: getattr(competition, field) for field in SETTINGS},
        "dates": {
            f: (getattr(competition, f).isoformat() if getattr(competition, f) else None) for f in DATES
        },
        "data_files": [{"name": f.name, "description": f.description} for f in competition.data_files.all()],
        "solution": competition.solution_name or None,
        "features": competition.hidden_features_name or None,
        "solution_info": competition.solution_info,
    }
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        manifest["split_checksum"] = _write_split(competition, zf)
        zf.writestr("manifest.json", json.dumps(manifest, indent=2, sort_keys=True))
        for page in PAGES:
            zf.writestr(f"pages/{page}.md", getattr(competition, page))
        members = [(f.file, f"data/{f.name}") for f in competition.data_files.all()]
        members.append((competition.solution, f"solution/{competition.solution_name}"))
        members.append((competition.hidden_features, f"features/{competition.hidden_features_name}"))
        for field_file, member in members:
            if field_file:
                with field_file.open("rb") as src, zf.open(member, "w") as dst:
                    shutil.copyfileobj(src, dst, 1024 * 1024)


def _safe_member(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return bool(parts) and not name.startswith("/") and ".." not in parts


def import_competition(path: Path, *, organizer=None) -> Competition:
    """Create a competition from a bundle. Every problem is collected and raised at once."""
    errors: list[str] = []
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        raise ValidationError("The bundle is not a readable zip file.") from None
    with zf:
        names = set(zf.namelist())
        bad = [n for n in names if not _safe_member(n)]
        if bad:
            raise ValidationError(f"The bundle has unsafe paths: {', '.join(sorted(bad)[:5])}.")
        if sum(i.file_size for i in zf.infolist()) > MAX_MEMBER_BYTES:
            raise ValidationError("The bundle expands to more than 2 GB.")
        if "manifest.json" not in names:
            raise ValidationError("The bundle has no manifest.json.")
        try:
            manifest = json.loads(zf.read("manifest.json"))
        except ValueError as exc:
            raise ValidationError(f"manifest.json is not valid JSON: {exc}.") from None
        if manifest.get("format") != "holdout-competition" or manifest.get("version") != FORMAT_VERSION:
            raise ValidationError(
                f"manifest.json is not a version-{FORMAT_VERSION} Holdout competition manifest."
            )

        settings = manifest.get("settings") or {}
        missing = [f for f in ("slug", "title", "metric") if not settings.get(f)]
        errors += [f"manifest.json: settings.{f} is required." for f in missing]
        unknown = sorted(set(settings) - set(SETTINGS))
        if unknown:
            errors.append(f"manifest.json: unknown settings {', '.join(unknown)}.")
        competition = Competition(**{k: v for k, v in settings.items() if k in SETTINGS})
        for field in DATES:
            raw = (manifest.get("dates") or {}).get(field)
            value = parse_datetime(raw) if raw else None
            if raw and value is None:
                errors.append(f"manifest.json: dates.{field} is not an ISO-8601 date-time: {raw!r}.")
            if value is not None:
                setattr(competition, field, value)
        for page in PAGES:
            member = f"pages/{page}.md"
            setattr(competition, page, zf.read(member).decode("utf-8", "replace") if member in names else "")
        try:
            competition.full_clean()
        except ValidationError as exc:
            errors += [f"{field}: {msg}" for field, msgs in exc.message_dict.items() for msg in msgs]

        data_files = manifest.get("data_files") or []
        for entry in data_files:
            if f"data/{entry.get('name')}" not in names:
                errors.append(
                    f"Data file {entry.get('name')!r} is listed in the manifest but not in the bundle."
                )

        prepared = None
        solution_name = manifest.get("solution")
        if solution_name:
            member = f"solution/{solution_name}"
            if member not in names:
                errors.append(
                    f"The solution {solution_name!r} is listed in the manifest but not in the bundle."
                )
            elif not missing:
                with tempfile.TemporaryDirectory(prefix="holdout-bundle-") as tmp:
                    split = None
                    if SPLIT_MEMBER in names:
                        split = Path(zf.extract(SPLIT_MEMBER, tmp))
                    try:
                        with zf.open(member) as fh:
                            prepared = services.solution_prepare_for(
                                competition, File(fh, name=solution_name), keep_split=split
                            )
                    except ValidationError as exc:
                        errors += [f"Solution: {m}" for m in exc.messages]
                expected = manifest.get("split_checksum")
                if prepared and expected and split_checksum(prepared[0]) != expected:
                    errors.append("The re-derived public/private split differs from the exported one.")
        features = None
        features_name = manifest.get("features")
        if features_name:
            member = f"features/{features_name}"
            if member not in names:
                errors.append(
                    f"The features {features_name!r} are listed in the manifest but not in the bundle."
                )
            elif prepared:
                try:
                    with zf.open(member) as fh:
                        features = services.features_validate(
                            File(fh, name=features_name), competition=competition, prepared=prepared[0]
                        )
                except ValidationError as exc:
                    errors += [f"Features: {m}" for m in exc.messages]
        if errors:
            for made in (prepared, features):
                if made:
                    shutil.rmtree(made[0].parent, ignore_errors=True)
            raise ValidationError(errors)

        try:
            with transaction.atomic():
                competition.save()
                if organizer is not None:
                    competition.organizers.add(organizer)
                for entry in data_files:
                    data_file = DataFile(
                        competition=competition, name=entry["name"], description=entry.get("description", "")
                    )
                    with zf.open(f"data/{entry['name']}") as fh:
                        data_file.file.save(entry["name"], File(fh), save=False)
                    data_file.save()
                if prepared:
                    with zf.open(f"solution/{solution_name}") as fh:
                        services.competition_set_solution(
                            competition,
                            source=File(fh),
                            prepared=prepared[0],
                            info=prepared[1],
                            original_name=solution_name,
                        )
                if features:
                    services.competition_set_features(
                        competition, local=features[0], info=features[1], original_name=features_name
                    )
        finally:
            for made in (prepared, features):
                if made:
                    shutil.rmtree(made[0].parent, ignore_errors=True)
    return competition
