"""Settings: precedence of flags, environment and config file, and the docs page matches."""

from __future__ import annotations

from pathlib import Path

import pytest

from pollwatch.errors import SettingsError
from pollwatch.settings import FIELDS, Settings, load_settings

DOCS = Path(__file__).resolve().parents[1] / "docs" / "settings.md"


def test_precedence_flag_over_env_over_config(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[pollwatch]\nhome = "{tmp_path / "from-config"}"\ndownload = false\n')
    env = {"POLLWATCH_CONFIG": str(config)}
    assert load_settings(environ=env).home == tmp_path / "from-config"
    assert load_settings(environ=env).download is False
    env["POLLWATCH_HOME"] = str(tmp_path / "from-env")
    assert load_settings(environ=env).home == tmp_path / "from-env"
    flagged = load_settings({"home": tmp_path / "from-flag"}, environ=env)
    assert flagged.home == tmp_path / "from-flag"
    assert flagged.config_file == config


def test_unknown_config_key_is_named(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[pollwatch]\nhoem = "x"\n')
    with pytest.raises(SettingsError, match="unknown key 'hoem'"):
        load_settings(environ={"POLLWATCH_CONFIG": str(config)})


def test_bad_toml_and_missing_file(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("home = \n")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings(environ={"POLLWATCH_CONFIG": str(config)})
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(environ={"POLLWATCH_CONFIG": str(tmp_path / "nope.toml")})


def test_mirror_must_be_a_folder(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="POLLWATCH_DATA_MIRROR"):
        load_settings(environ={"POLLWATCH_DATA_MIRROR": str(tmp_path / "absent")})
    settings = load_settings(environ={"POLLWATCH_DATA_MIRROR": str(tmp_path)})
    assert settings.data_mirror == tmp_path


def test_bad_boolean() -> None:
    with pytest.raises(SettingsError, match="not a boolean"):
        load_settings(environ={"POLLWATCH_DOWNLOAD": "maybe"})


def test_docs_page_lists_every_setting() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for name, (env, _key, _) in FIELDS.items():
        assert f"`{name}`" in text, name
        assert f"`{env}`" in text, env
    assert set(FIELDS) == set(Settings.__dataclass_fields__)
