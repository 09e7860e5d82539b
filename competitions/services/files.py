"""Copies of stored files on local disk: spooled uploads, worker copies, the hidden-file cache."""

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError

from workers.engine.errors import SolutionError


def local_copy(field_file, directory: Path, name: str) -> Path:
    """Copy a stored file to the worker's disk: storages may be remote (S3)."""
    target = directory / name
    with field_file.storage.open(field_file.name, "rb") as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, dst, length=1024 * 1024)
    return target


def cached_copy(field_file) -> Path:
    """A hidden file (prepared solution, model features) on this worker's disk, fetched once per
    version: stored names are random and never reused, so the name is the cache key."""
    cache_dir = Path(settings.HOLDOUT_WORKER_CACHE)
    cache_dir.mkdir(parents=True, exist_ok=True)
    cached = cache_dir / Path(field_file.name).name
    if not cached.exists():
        fd, tmp = tempfile.mkstemp(dir=cache_dir, suffix=".part")
        with open(fd, "wb") as dst, field_file.storage.open(field_file.name, "rb") as src:
            shutil.copyfileobj(src, dst, length=1024 * 1024)
        Path(tmp).replace(cached)  # atomic: concurrent workers never read half a file
    return cached


@contextmanager
def spooled(uploaded, filename: str) -> Iterator[Path]:
    """Write an upload into a fresh temporary directory and yield its path there.

    Engine errors inside become a ValidationError listing every problem, and the directory is
    removed; on success the caller owns the directory (the parent of what it returns) and must
    remove it.
    """
    tmp = Path(tempfile.mkdtemp(prefix="holdout-upload-"))
    local = tmp / filename
    with open(local, "wb") as dst:
        for chunk in uploaded.chunks():
            dst.write(chunk)
    if hasattr(uploaded, "seek"):
        uploaded.seek(0)
    try:
        yield local
    except SolutionError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ValidationError([ValidationError(p) for p in exc.problems]) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
