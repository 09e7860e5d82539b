"""Organizer operations on a challenge's hidden files: the solution, its split, the model
features and the sample submission.

These run in the web process when an organizer saves the admin form, so the engine (pandas,
pyarrow) is imported inside each function: a web process loads it only when an organizer
uploads a solution, never to serve pages.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.core.files import File
from django.db import transaction
from django.utils import timezone

from competitions.models import Competition, DataFile
from competitions.services.files import cached_copy, local_copy, spooled

if TYPE_CHECKING:
    from workers.engine import SolutionInfo
    from workers.modelrun.features import FeaturesInfo


def solution_prepare_upload(
    uploaded,
    *,
    id_column: str,
    target_column: str,
    metric: str,
    public_fraction: float,
    seed: int | None = None,
    keep_split: Path | None = None,
) -> tuple[Path, SolutionInfo]:
    """Validate an uploaded solution and build its prepared form in a temporary directory.

    The split is kept from ``keep_split`` (a prepared solution) when it still fits, else drawn
    anew: from ``seed`` if one is given, otherwise from a secret random source.

    Raises ValidationError listing every problem (for the admin form). The caller owns the
    returned directory (the parent of the returned path) and must remove it.
    """
    from workers.engine import prepare_solution

    with spooled(uploaded, "solution.csv") as src:
        out = src.parent / "prepared.parquet"
        info = prepare_solution(
            src,
            out,
            id_column=id_column,
            target_column=target_column,
            metric=metric,
            public_fraction=public_fraction,
            seed=seed,
            keep_split=keep_split,
        )
    return out, info


def stored_split(competition: Competition) -> Path | None:
    """The competition's current prepared solution on local disk, whose split a re-preparation
    keeps unless the organizer explicitly re-splits."""
    return cached_copy(competition.prepared_solution) if competition.prepared_solution else None


def solution_prepare_for(
    competition: Competition, uploaded, *, resplit: bool = False, keep_split: Path | None = None
) -> tuple[Path, SolutionInfo]:
    """solution_prepare_upload with a competition's own columns, metric and split settings,
    keeping its stored split (or ``keep_split``) unless ``resplit``."""
    return solution_prepare_upload(
        uploaded,
        id_column=competition.id_column,
        target_column=competition.target_column,
        metric=competition.metric,
        public_fraction=competition.public_fraction,
        seed=competition.split_seed,
        keep_split=None if resplit else (keep_split or stored_split(competition)),
    )


@transaction.atomic
def competition_set_solution(
    competition: Competition, *, source, prepared: Path, info: SolutionInfo, original_name: str
) -> None:
    """Store a validated solution (source CSV and prepared form) and its split on a competition."""
    old = [f.name for f in (competition.solution, competition.prepared_solution) if f]
    if source is not None:
        competition.solution.save(original_name, source, save=False)
        competition.solution_name = Path(original_name).name
    with open(prepared, "rb") as fh:
        competition.prepared_solution.save("prepared.parquet", File(fh), save=False)
    competition.solution_info = info.to_dict()
    competition.split_fraction_used = competition.public_fraction
    competition.split_seed_used = competition.split_seed
    competition.solution_updated_at = timezone.now()
    competition.save()
    keep = {competition.solution.name, competition.prepared_solution.name}
    storage = competition.prepared_solution.storage
    transaction.on_commit(lambda: [storage.delete(n) for n in old if n not in keep])


def competition_reprepare_solution(competition: Competition, *, resplit: bool = False) -> SolutionInfo:
    """Re-derive the prepared solution from the stored CSV with the competition's current settings.

    Used after a metric or column change, which keeps the stored split, and for an explicit
    re-split (``resplit=True``), which draws a new one.
    """
    if not competition.solution:
        raise ValidationError("This challenge has no solution file yet.")
    with competition.solution.open("rb") as fh:
        prepared, info = solution_prepare_for(competition, File(fh), resplit=resplit)
    try:
        competition_set_solution(
            competition, source=None, prepared=prepared, info=info, original_name=competition.solution_name
        )
    finally:
        shutil.rmtree(prepared.parent, ignore_errors=True)
    return info


def features_validate(
    uploaded, *, competition: Competition, prepared: Path | None = None
) -> tuple[Path, FeaturesInfo]:
    """Check a model challenge's hidden test features against its solution's ids.

    Returns a temporary copy (the caller removes its parent directory) and what the Data tab
    shows: the per-row input shape. Raises ValidationError listing every problem.
    """
    suffix = ".npz" if (uploaded.name or "").lower().endswith(".npz") else ".csv"
    with spooled(uploaded, f"features{suffix}") as local:
        from workers.engine import SolutionError
        from workers.engine.solution import solution_ids
        from workers.modelrun.features import inspect_features

        if prepared is None and not competition.prepared_solution:
            raise SolutionError(["Upload the solution first: the features must cover exactly its ids."])
        ids = solution_ids(prepared or cached_copy(competition.prepared_solution))
        info = inspect_features(local, id_column=competition.id_column, solution_ids=ids)
    return local, info


@transaction.atomic
def competition_set_features(
    competition: Competition, *, local: Path, info: FeaturesInfo, original_name: str
) -> None:
    old = competition.hidden_features.name if competition.hidden_features else None
    with open(local, "rb") as fh:
        competition.hidden_features.save(original_name, File(fh), save=False)
    competition.hidden_features_name = Path(original_name).name
    competition.features_info = info.to_dict()
    competition.save()
    if old:
        storage = competition.hidden_features.storage
        transaction.on_commit(lambda: storage.delete(old))


@transaction.atomic
def competition_generate_sample_submission(competition: Competition) -> DataFile:
    """Create (or replace) sample_submission.csv: the solution's ids with one constant prediction.

    The constant comes from the data file marked as training data (its target's average or
    most frequent class), else a neutral value; never from the hidden targets.
    """
    if not competition.is_ready:
        raise ValidationError("Upload a solution first: the sample submission is built from its ids.")
    train = competition.data_files.filter(is_training=True).first()
    with tempfile.TemporaryDirectory(prefix="holdout-sample-") as tmp:
        prepared = local_copy(competition.prepared_solution, Path(tmp), "prepared.parquet")
        train_path = local_copy(train.file, Path(tmp), "train.csv") if train else None
        out = Path(tmp) / "sample_submission.csv"
        from workers.engine.solution import sample_submission_csv

        how = sample_submission_csv(prepared, out, metric=competition.metric, train=train_path)
        data_file = DataFile.objects.filter(competition=competition, name="sample_submission.csv").first()
        data_file = data_file or DataFile(competition=competition, name="sample_submission.csv")
        if data_file.file:
            data_file.file.delete(save=False)
        with open(out, "rb") as fh:
            data_file.file.save("sample_submission.csv", File(fh), save=False)
        data_file.size = data_file.file.size
        data_file.description = f"A valid submission in the expected format; it predicts {how}."[:300]
        data_file.save()
    return data_file
