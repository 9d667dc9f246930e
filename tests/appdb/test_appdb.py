"""The application database opens, migrates to every head and refuses bad URLs in one line."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from pollwatch.appdb import Database, open_database
from pollwatch.errors import DatabaseError
from pollwatch.settings import load_settings


def test_default_is_sqlite_in_home_created_private(tmp_path: Path) -> None:
    settings = load_settings({"home": tmp_path}, environ={})
    assert settings.app_database_url == f"sqlite:///{tmp_path / 'app.db'}"
    database = open_database(settings)
    try:
        assert database.revisions()  # at every head of the shipped migrations
        mode = stat.S_IMODE((tmp_path / "app.db").stat().st_mode)
        assert mode == 0o600
    finally:
        database.close()


def test_reopening_is_idempotent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    first = open_database(url)
    heads = first.revisions()
    first.close()
    second = open_database(url)
    assert second.revisions() == heads
    second.close()


def test_session_rolls_back_on_error(tmp_path: Path) -> None:
    database: Database = open_database(f"sqlite:///{tmp_path / 'x.db'}")
    with database.session() as session:
        session.connection().exec_driver_sql("CREATE TABLE t (a INTEGER)")
    with pytest.raises(RuntimeError), database.session() as session:
        session.connection().exec_driver_sql("INSERT INTO t VALUES (1)")
        raise RuntimeError("boom")
    with database.session() as session:
        count = session.connection().exec_driver_sql("SELECT count(*) FROM t").scalar()
    assert count == 0
    database.close()


def test_bad_url_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(DatabaseError, match="not valid"):
        open_database("not a url")
    with pytest.raises(Exception, match="database URL"):
        load_settings({"home": tmp_path, "database_url": "app.db"}, environ={})
