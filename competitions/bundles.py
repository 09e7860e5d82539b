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
import zlib
from pathlib import Path, PurePosixPath

from django.core.exceptions import ValidationError
from django.core.files import File
from django.db import transaction
from django.utils.dateparse import parse_datetime

from competitions import services
from competitions.models import Competition, DataFile, file_name_problem

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
MAX_TEXT_BYTES = 10 * 1024**2  # manifest.json and each page, which are read into memory
# What reading a damaged, truncated, encrypted or oddly compressed zip raises.
ZIP_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    OSError,
    NotImplementedError,
    RuntimeError,
    ValueError,
)
DAMAGED = "The bundle is damaged or truncated (its zip data cannot be read); export it again."


def split_checksum(prepared_path: Path) -> str:
    import pyarrow.parquet as pq  # only when a bundle is made or read: the admin's web process

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
        import pyarrow.parquet as pq

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


def _check_archive(zf: zipfile.ZipFile, names: set[str]) -> None:
    """Refuse unsafe paths, bombs and damaged data before anything is read or stored."""
    bad = [n for n in names if not _safe_member(n)]
    if bad:
        raise ValidationError(f"The bundle has unsafe paths: {', '.join(sorted(map(repr, bad))[:5])}.")
    if sum(i.file_size for i in zf.infolist()) > MAX_MEMBER_BYTES:
        raise ValidationError("The bundle expands to more than 2 GB.")
    texts = [i for i in zf.infolist() if i.filename == "manifest.json" or i.filename.startswith("pages/")]
    if any(i.file_size > MAX_TEXT_BYTES for i in texts):
        raise ValidationError("manifest.json or a page is larger than 10 MB.")
    # Decompress every member once (the sizes above bound the work): a bad CRC or a cut-off
    # member is found here, not halfway through copying files into storage. Reading stops at
    # each member's declared size, so a member lying about its size fails its CRC check.
    try:
        damaged = zf.testzip()
    except ZIP_ERRORS:
        damaged = True
    if damaged:
        raise ValidationError(DAMAGED)


def _manifest_problems(manifest) -> list[str]:
    """The manifest's shape, checked before any value in it is used."""
    if not isinstance(manifest, dict):
        return ["manifest.json must hold a JSON object."]
    problems = [
        f"manifest.json: {key} must be a JSON object."
        for key in ("settings", "dates")
        if not isinstance(manifest.get(key) or {}, dict)
    ]
    data_files = manifest.get("data_files") or []
    if not isinstance(data_files, list) or not all(
        isinstance(e, dict) and isinstance(e.get("name"), str) and isinstance(e.get("description", ""), str)
        for e in data_files
    ):
        problems.append('manifest.json: data_files must be a list of {"name": …, "description": …}.')
        data_files = []
    names = [e["name"] for e in data_files]
    for entry in data_files:
        # The rules the admin applies to a data file's name and description.
        data_file = DataFile(name=entry["name"], description=entry.get("description", ""))
        try:
            data_file.full_clean(exclude=["competition", "file"], validate_constraints=False)
        except ValidationError as exc:
            problems += [
                f"Data file {entry['name']!r}, {field}: {msg}"
                for field, msgs in exc.message_dict.items()
                for msg in msgs
            ]
    for key in ("solution", "features"):
        value = manifest.get(key)
        if value is not None and not isinstance(value, str):
            problems.append(f"manifest.json: {key} must be a file name or null.")
        elif value:
            names.append(value)
            problem = file_name_problem(value)
            if problem:
                problems.append(f"The {key} file {value!r}: {problem}")
    if len(set(names)) != len(names):
        problems.append("manifest.json: two files have the same name.")
    return problems


def _listed(names: set[str], folder: str, name: str | None, what: str, errors: list[str]) -> bool:
    """Whether the manifest names a member of ``folder`` that the bundle holds; a missing one is
    an error (a member the manifest does not name is simply absent: False, no error)."""
    if not name:
        return False
    if f"{folder}/{name}" not in names:
        verb = "are" if what.endswith("features") else "is"
        errors.append(f"{what} {name!r} {verb} listed in the manifest but not in the bundle.")
        return False
    return True


def _prepare_solution(zf, names: set[str], manifest: dict, competition: Competition, errors: list[str]):
    """Validate the bundle's solution with the split it carries; check the split's checksum."""
    solution_name = manifest["solution"]
    prepared = None
    with tempfile.TemporaryDirectory(prefix="holdout-bundle-") as tmp:
        split = Path(zf.extract(SPLIT_MEMBER, tmp)) if SPLIT_MEMBER in names else None
        try:
            with zf.open(f"solution/{solution_name}") as fh:
                prepared = services.solution_prepare_for(
                    competition, File(fh, name=solution_name), keep_split=split
                )
        except ValidationError as exc:
            errors += [f"Solution: {m}" for m in exc.messages]
    expected = manifest.get("split_checksum")
    if prepared and expected and split_checksum(prepared[0]) != expected:
        errors.append("The re-derived public/private split differs from the exported one.")
    return prepared


def import_competition(path: Path, *, organizer=None) -> Competition:
    """Create a competition from a bundle. Every problem is collected and raised at once."""
    try:
        zf = zipfile.ZipFile(path)
    except ZIP_ERRORS:
        raise ValidationError("The bundle is not a readable zip file.") from None
    try:
        return _import(zf, organizer)
    except (zipfile.BadZipFile, zlib.error, EOFError):
        # Checked up front by _check_archive; this covers the file changing underneath us.
        raise ValidationError(DAMAGED) from None


def _import(zf: zipfile.ZipFile, organizer) -> Competition:
    errors: list[str] = []
    with zf:
        names = set(zf.namelist())
        _check_archive(zf, names)
        if "manifest.json" not in names:
            raise ValidationError("The bundle has no manifest.json.")
        try:
            manifest = json.loads(zf.read("manifest.json"))
        except (ValueError, RecursionError) as exc:
            raise ValidationError(f"manifest.json is not valid JSON: {exc}.") from None
        problems = _manifest_problems(manifest)
        if problems:
            raise ValidationError(problems)
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
            try:
                value = parse_datetime(raw) if isinstance(raw, str) and raw else None
            except ValueError:  # well formed but impossible, like month 13
                value = None
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
        except (TypeError, ValueError):
            # A value of the wrong JSON type that a field's own check let through.
            errors.append("manifest.json: some settings have values of the wrong type.")

        data_files = manifest.get("data_files") or []
        for entry in data_files:
            if f"data/{entry.get('name')}" not in names:
                errors.append(
                    f"Data file {entry.get('name')!r} is listed in the manifest but not in the bundle."
                )

        solution_name = manifest.get("solution")
        prepared = None
        if _listed(names, "solution", solution_name, "The solution", errors) and not missing:
            prepared = _prepare_solution(zf, names, manifest, competition, errors)
        features_name = manifest.get("features")
        features = None
        if _listed(names, "features", features_name, "The features", errors) and prepared:
            try:
                with zf.open(f"features/{features_name}") as fh:
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
