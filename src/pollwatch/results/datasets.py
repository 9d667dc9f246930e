"""Public election datasets: where each comes from, its checksum, and how to import it.

:func:`fetch` finds a dataset's file in this order, verifying its SHA-256 every time:

1. the data mirror (setting ``data_mirror`` / ``POLLWATCH_DATA_MIRROR``), laid out as
   ``<mirror>/<folder>/<file>``; when a mirror is set, nothing is downloaded;
2. the download cache ``<home>/cache/datasets/<folder>/<file>``;
3. a download from the dataset's source URL (pinned to a commit, so the bytes cannot change),
   streamed to a temporary file, checked, then renamed into the cache.

Some datasets are extracts made for the mirror (a column subset, a re-compression); they have no
URL with the same bytes, so they are ``mirror_only`` and say where their upstream lives.
"""

from __future__ import annotations

import hashlib
import tomllib
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from pollwatch.errors import DatasetError
from pollwatch.fileio import atomic_write
from pollwatch.registry import Registry
from pollwatch.results.importers.base import import_file
from pollwatch.results.importers.limits import ImportLimits
from pollwatch.results.model import Election
from pollwatch.settings import Settings

__all__ = [
    "DATASETS",
    "Dataset",
    "ProgressCallback",
    "fetch",
    "import_dataset",
    "locate",
    "verify_sha256",
]

#: ``progress(bytes_done, bytes_total_or_None)``, called while downloading.
ProgressCallback = Callable[[int, int | None], None]

_CHUNK = 1 << 16


@dataclass(frozen=True)
class Dataset:
    """One public dataset file and how pollwatch imports it."""

    name: str
    title: str
    folder: str
    filename: str
    sha256: str
    size: int
    importer: str
    license: str
    url: str | None = None
    upstream: str = ""
    mapping: str | None = None
    options: Mapping[str, str] = field(default_factory=dict)

    @property
    def mirror_only(self) -> bool:
        return self.url is None


DATASETS: Registry[Dataset] = Registry("dataset", "pollwatch.datasets")


def _load_catalogue() -> None:
    """Register the datasets listed in the shipped ``datasets.toml``."""
    text = resources.files("pollwatch.results").joinpath("datasets.toml").read_text("utf-8")
    for name, entry in tomllib.loads(text).items():
        DATASETS.add(name, Dataset(name=name, **entry))


_load_catalogue()


def _sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def verify_sha256(
    path: Path, expected: str, what: str, *, hint: str, reason: str | None = None
) -> None:
    """Raise :class:`DatasetError` unless the file's SHA-256 is ``expected`` (hex).

    ``what`` names the file in the message (``dataset 'russia-2011'``)."""
    actual = _sha256(path)
    if actual != expected:
        raise DatasetError(
            f"{path}: checksum mismatch for {what} "
            f"(expected {expected[:16]}..., found {actual[:16]}...)",
            hint=hint,
            reason=reason,
        )


def _resolve(dataset: Dataset | str) -> Dataset:
    return DATASETS.get(dataset) if isinstance(dataset, str) else dataset


def locate(dataset: Dataset | str, settings: Settings) -> Path | None:
    """The verified local copy of a dataset (mirror, then cache), or None if there is none."""
    dataset = _resolve(dataset)
    candidates = []
    if settings.data_mirror is not None:
        candidates.append(settings.data_mirror / dataset.folder / dataset.filename)
    candidates.append(settings.datasets_cache / dataset.folder / dataset.filename)
    for path in candidates:
        if path.is_file():
            verify_sha256(
                path,
                dataset.sha256,
                f"dataset {dataset.name!r}",
                hint="the file is damaged or a different version; delete it and fetch again",
                reason=f"the local copy {path} fails its checksum (delete it and fetch again)",
            )
            return path
    return None


def fetch(
    dataset: Dataset | str,
    settings: Settings,
    *,
    progress: ProgressCallback | None = None,
    timeout: float = 30.0,
) -> Path:
    """A verified local path of the dataset's file, downloading it only when allowed and needed."""
    dataset = _resolve(dataset)
    found = locate(dataset, settings)
    if found is not None:
        return found
    where = (
        f"not in the data mirror {settings.data_mirror}"
        if settings.data_mirror is not None
        else "no data mirror is set (POLLWATCH_DATA_MIRROR)"
    )
    if settings.data_mirror is not None:
        raise DatasetError(
            f"dataset {dataset.name!r}: {dataset.folder}/{dataset.filename} is {where}",
            hint="complete the mirror or unset POLLWATCH_DATA_MIRROR to download",
            reason=f"not in the data mirror {settings.data_mirror} (add "
            f"{dataset.folder}/{dataset.filename})",
        )
    if dataset.mirror_only:
        raise DatasetError(
            f"dataset {dataset.name!r} is an extract available only from a pollwatch data "
            f"mirror, and {where}",
            hint=f"set POLLWATCH_DATA_MIRROR to a folder holding {dataset.folder}/"
            f"{dataset.filename} (upstream: {dataset.upstream})",
            reason="exists only in a data mirror (set POLLWATCH_DATA_MIRROR)",
        )
    if not settings.download:
        raise DatasetError(
            f"dataset {dataset.name!r} is not cached and downloads are disabled",
            hint="set POLLWATCH_DOWNLOAD=true or POLLWATCH_DATA_MIRROR",
            reason="not cached and downloads are disabled (set POLLWATCH_DOWNLOAD=true or "
            "POLLWATCH_DATA_MIRROR)",
        )
    assert dataset.url is not None
    target = settings.datasets_cache / dataset.folder / dataset.filename
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    try:
        request = urllib.request.Request(dataset.url, headers={"User-Agent": "pollwatch"})
        # a download that fails or fails its checksum leaves the cache as it was
        with (
            urllib.request.urlopen(request, timeout=timeout) as response,
            atomic_write(target) as out,
        ):
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else dataset.size
            done = 0
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, total)
            if digest.hexdigest() != dataset.sha256:
                raise DatasetError(
                    f"dataset {dataset.name!r}: download from {dataset.url} has checksum "
                    f"{digest.hexdigest()[:16]}..., expected {dataset.sha256[:16]}...",
                    hint="the source changed or the transfer was damaged; nothing was kept",
                    reason=f"the download from {dataset.url} fails its checksum",
                )
        return target
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise DatasetError(
            f"dataset {dataset.name!r}: cannot download {dataset.url} ({reason})",
            hint="without network, set POLLWATCH_DATA_MIRROR to a local copy of the data",
            reason=f"cannot download {dataset.url} ({reason}; without network, set "
            "POLLWATCH_DATA_MIRROR)",
        ) from None


def import_dataset(
    dataset: Dataset | str,
    settings: Settings,
    *,
    progress: ProgressCallback | None = None,
    strict: bool = False,
) -> Election:
    """Fetch a dataset and read it with its importer; the election id is the dataset name.

    Bad rows are set aside into the election's quarantine; ``strict`` fails on the first one.
    """
    dataset = _resolve(dataset)
    path = fetch(dataset, settings, progress=progress)
    mapping = Path(dataset.mapping) if dataset.mapping else None
    election = import_file(
        path,
        importer=dataset.importer,
        mapping=mapping,
        options=dict(dataset.options) or None,
        election_id=dataset.name,
        limits=ImportLimits.from_settings(settings),
        strict=strict,
    )
    return election
