"""One settings object for the whole of pollwatch.

Sources, strongest first: explicit overrides (CLI flags), environment variables ``POLLWATCH_*``,
a TOML config file, built-in defaults. Every field is documented in ``docs/settings.md``; a test
checks that page against :data:`FIELDS`.
"""

from __future__ import annotations

import getpass
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import platformdirs

from pollwatch.errors import SettingsError

__all__ = ["FIELDS", "Settings", "load_settings"]

_MIB = 1024 * 1024


@dataclass(frozen=True)
class Settings:
    """Where pollwatch keeps its data and where it finds public datasets.

    Attributes:
        home: root of the local store (elections, analysis cache, evidence, datasets cache).
        data_mirror: a local folder holding public datasets laid out as
            ``<mirror>/<dataset folder>/<file>``; when set, datasets are read from it and
            never downloaded.
        download: whether datasets missing from mirror and cache may be downloaded.
        actor: who is acting, as recorded in the evidence custody log (default: the login name).
        timestamp_authorities: RFC 3161 time-stamp authority URLs that checkpoints are sent to.
        upload_max_bytes: the largest request body the dashboard accepts for an import.
        import_max_unpacked_bytes: the most bytes an importer holds of one source file, after
            unpacking a zip or gzip member (a plain file counts as it is).
        import_max_compression_ratio: the most a zip or gzip member may grow when unpacked
            (unpacked bytes over compressed bytes, checked past the first MiB).
        import_max_rows: the most data rows a results table may have.
        import_max_columns: the most columns a results table may have.
        import_max_cells: the most cells (rows times columns) a results table may have; what
            bounds an import's memory (about 65 bytes a cell at the peak).
        import_workers: how many worker processes the dashboard runs imports in.
        import_wait_seconds: how long an import request waits for its job before answering
            with the job to poll (``202``) instead of the election (``201``).
        database_url: the SQLAlchemy URL of the application database (observers, and later
            accounts and jobs); empty means the embedded SQLite file ``<home>/app.db``.
        config_file: the TOML file the other values were read from, if any.
    """

    home: Path
    data_mirror: Path | None = None
    download: bool = True
    actor: str = ""
    timestamp_authorities: tuple[str, ...] = ()
    upload_max_bytes: int = 256 * _MIB
    import_max_unpacked_bytes: int = 512 * _MIB
    import_max_compression_ratio: float = 100.0
    import_max_rows: int = 5_000_000
    import_max_columns: int = 1_000
    import_max_cells: int = 50_000_000
    import_workers: int = 1
    import_wait_seconds: float = 30.0
    database_url: str = ""
    config_file: Path | None = None

    @property
    def analysis_dir(self) -> Path:
        """``<home>/analysis``: cached method results, keyed by input digest and parameters."""
        return self.home / "analysis"

    @property
    def evidence_dir(self) -> Path:
        """``<home>/evidence``: the evidence archive (objects, log, checkpoints, keys)."""
        return self.home / "evidence"

    @property
    def calibration_dir(self) -> Path:
        """``<home>/calibration``: calibration runs and their cached cells (resumable)."""
        return self.home / "calibration"

    @property
    def video_dir(self) -> Path:
        """``<home>/video``: recorder spool, accounts, sessions and the playback policy."""
        return self.home / "video"

    @property
    def app_database_url(self) -> str:
        """The application database: ``database_url``, or SQLite at ``<home>/app.db``."""
        return self.database_url or f"sqlite:///{self.home / 'app.db'}"

    @property
    def elections_dir(self) -> Path:
        """``<home>/elections``: one folder per imported election."""
        return self.home / "elections"

    @property
    def datasets_cache(self) -> Path:
        """``<home>/cache/datasets``: downloaded public datasets."""
        return self.home / "cache" / "datasets"

    def with_overrides(self, **values: Any) -> Settings:
        """A copy with the given fields replaced (``None`` values are ignored)."""
        return replace(self, **{k: v for k, v in values.items() if v is not None})


#: field name -> (environment variable, config key, one-line description)
FIELDS: dict[str, tuple[str, str, str]] = {
    "home": ("POLLWATCH_HOME", "home", "root folder of the local store"),
    "data_mirror": (
        "POLLWATCH_DATA_MIRROR",
        "data_mirror",
        "local folder with public datasets; read instead of downloading",
    ),
    "download": (
        "POLLWATCH_DOWNLOAD",
        "download",
        "allow downloading datasets missing from mirror and cache (true/false)",
    ),
    "actor": (
        "POLLWATCH_ACTOR",
        "actor",
        "who is acting, recorded in the evidence custody log (default: the login name)",
    ),
    "timestamp_authorities": (
        "POLLWATCH_TSA_URLS",
        "timestamp_authorities",
        "RFC 3161 time-stamp authority URLs for checkpoints (comma-separated in the variable)",
    ),
    "upload_max_bytes": (
        "POLLWATCH_UPLOAD_MAX_BYTES",
        "upload_max_bytes",
        "largest request body the dashboard accepts for an import (bytes, or e.g. 256MiB)",
    ),
    "import_max_unpacked_bytes": (
        "POLLWATCH_IMPORT_MAX_UNPACKED_BYTES",
        "import_max_unpacked_bytes",
        "most bytes an importer reads of one source file after unpacking zip or gzip",
    ),
    "import_max_compression_ratio": (
        "POLLWATCH_IMPORT_MAX_COMPRESSION_RATIO",
        "import_max_compression_ratio",
        "most a zip or gzip member may grow when unpacked (unpacked / compressed bytes)",
    ),
    "import_max_rows": (
        "POLLWATCH_IMPORT_MAX_ROWS",
        "import_max_rows",
        "most data rows a results table may have",
    ),
    "import_max_columns": (
        "POLLWATCH_IMPORT_MAX_COLUMNS",
        "import_max_columns",
        "most columns a results table may have",
    ),
    "import_max_cells": (
        "POLLWATCH_IMPORT_MAX_CELLS",
        "import_max_cells",
        "most cells (rows x columns) a results table may have; bounds an import's memory",
    ),
    "import_workers": (
        "POLLWATCH_IMPORT_WORKERS",
        "import_workers",
        "worker processes the dashboard runs imports in",
    ),
    "import_wait_seconds": (
        "POLLWATCH_IMPORT_WAIT_SECONDS",
        "import_wait_seconds",
        "how long an import request waits for its job before answering 202 with the job",
    ),
    "database_url": (
        "POLLWATCH_DATABASE_URL",
        "database_url",
        "SQLAlchemy URL of the application database (default: SQLite at <home>/app.db)",
    ),
    "config_file": ("POLLWATCH_CONFIG", "-", "path of the TOML config file"),
}

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _parse_bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise SettingsError(f"{where}: {value!r} is not a boolean", hint="use true or false")


_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}


def _parse_size(value: Any, where: str) -> int:
    """A byte count: an integer, or a number with a unit (``512MiB``, ``1 GB``)."""
    if isinstance(value, int) and not isinstance(value, bool):
        number, unit = float(value), ""
    else:
        match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*", str(value))
        if match is None or match.group(2).lower() not in _SIZE_UNITS:
            raise SettingsError(
                f"{where}: {value!r} is not a size in bytes",
                hint="give a whole number of bytes or a size like 256MiB or 1GB",
            )
        number, unit = float(match.group(1)), match.group(2).lower()
    size = int(number * _SIZE_UNITS[unit])
    if size < 1:
        raise SettingsError(f"{where}: {value!r} must be at least 1 byte")
    return size


def _parse_number(value: Any, where: str, *, minimum: float, integer: bool) -> Any:
    """A number no smaller than ``minimum`` (a whole number where ``integer``)."""
    what = "a whole number" if integer else "a number"
    if isinstance(value, bool):
        raise SettingsError(f"{where}: {value!r} is not {what}")
    try:
        number: float = int(str(value).strip().replace("_", "")) if integer else float(value)
    except (TypeError, ValueError):
        raise SettingsError(f"{where}: {value!r} is not {what}") from None
    if not number >= minimum:  # also refuses NaN
        raise SettingsError(f"{where}: {value!r} must be at least {minimum:g}")
    return number


def default_config_file() -> Path:
    """The config file read when ``POLLWATCH_CONFIG`` is not set."""
    return Path(platformdirs.user_config_dir("pollwatch")) / "config.toml"


def _read_config(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(
            f"config file {path}: not valid TOML ({exc})", hint="fix the syntax"
        ) from None
    except OSError as exc:
        raise SettingsError(f"config file {path}: cannot read ({exc.strerror})") from None
    section = data.get("pollwatch", data)
    if not isinstance(section, dict):
        raise SettingsError(f"config file {path}: [pollwatch] must be a table")
    known = {key for _, key, _ in FIELDS.values() if key != "-"}
    for key in section:
        if key not in known:
            raise SettingsError(
                f"config file {path}: unknown key {key!r}",
                hint=f"known keys: {', '.join(sorted(known))}",
            )
    return section


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build the settings from overrides, environment, config file and defaults."""
    env = os.environ if environ is None else environ
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    unknown = set(overrides) - {f.name for f in fields(Settings)}
    if unknown:
        raise SettingsError(f"unknown setting(s): {', '.join(sorted(unknown))}")

    config_path: Path | None = None
    if "config_file" in overrides:
        config_path = Path(overrides["config_file"])
    elif env.get("POLLWATCH_CONFIG"):
        config_path = Path(env["POLLWATCH_CONFIG"])
    elif default_config_file().is_file():
        config_path = default_config_file()
    config: dict[str, Any] = {}
    if config_path is not None:
        if not config_path.is_file():
            raise SettingsError(
                f"config file {config_path} does not exist",
                hint="create it or unset POLLWATCH_CONFIG",
            )
        config = _read_config(config_path)

    def pick(name: str) -> tuple[Any, str] | None:
        env_name, key, _ = FIELDS[name]
        if name in overrides:
            return overrides[name], f"option {name}"
        if env.get(env_name):
            return env[env_name], f"environment variable {env_name}"
        if key in config:
            return config[key], f"config file {config_path} key {key!r}"
        return None

    home_value = pick("home")
    home = (
        Path(home_value[0]).expanduser()
        if home_value
        else Path(platformdirs.user_data_dir("pollwatch"))
    )
    mirror_value = pick("data_mirror")
    mirror = Path(mirror_value[0]).expanduser() if mirror_value else None
    if mirror is not None and mirror_value is not None and not mirror.is_dir():
        raise SettingsError(
            f"{mirror_value[1]}: data mirror {mirror} is not a folder",
            hint="point it at a folder laid out like shared/data, or unset it",
        )
    download_value = pick("download")
    download = _parse_bool(*download_value) if download_value else True
    actor_value = pick("actor")
    actor = str(actor_value[0]) if actor_value else _login_name()
    tsa_value = pick("timestamp_authorities")
    tsa_urls: tuple[str, ...] = ()
    if tsa_value:
        raw, where = tsa_value
        items = raw.split(",") if isinstance(raw, str) else raw
        if not isinstance(items, list | tuple) or not all(isinstance(u, str) for u in items):
            raise SettingsError(f"{where}: expected URLs", hint="a list of strings")
        tsa_urls = tuple(u.strip() for u in items if u.strip())
        for url in tsa_urls:
            if not url.startswith(("http://", "https://")):
                raise SettingsError(f"{where}: {url!r} is not an http(s) URL")
    limits: dict[str, Any] = {}
    for name in ("upload_max_bytes", "import_max_unpacked_bytes"):
        picked = pick(name)
        if picked is not None:
            limits[name] = _parse_size(*picked)
    for name, minimum, integer in (
        ("import_max_compression_ratio", 1.0, False),
        ("import_max_rows", 1, True),
        ("import_max_columns", 2, True),
        ("import_max_cells", 2, True),
        ("import_workers", 1, True),
        ("import_wait_seconds", 0.0, False),
    ):
        picked = pick(name)
        if picked is not None:
            limits[name] = _parse_number(*picked, minimum=minimum, integer=integer)
    database_value = pick("database_url")
    database_url = ""
    if database_value:
        raw, where = database_value
        if not isinstance(raw, str) or "://" not in raw:
            raise SettingsError(
                f"{where}: {raw!r} is not a database URL",
                hint="e.g. sqlite:///path/app.db or postgresql+psycopg://host/db",
            )
        database_url = raw.strip()
    return Settings(
        home=home,
        database_url=database_url,
        data_mirror=mirror,
        download=download,
        actor=actor,
        timestamp_authorities=tsa_urls,
        config_file=config_path,
        **limits,
    )


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"
