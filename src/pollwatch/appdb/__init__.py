"""Application state: SQLAlchemy 2 models and Alembic migrations, SQLite by default.

Everything that is neither an imported election (parquet, :mod:`pollwatch.results`) nor evidence
(the append-only archive, :mod:`pollwatch.evidence`) lives in one relational database: observer
organisations, observers and their deployment, checklist forms, submissions and master records,
incidents, protocol copies. The URL is ``Settings.database_url``; empty means the embedded SQLite
file ``<home>/app.db`` (mode 0600). PostgreSQL takes the same models (the server-deployment
work adds its driver).

:func:`open_database` creates the schema or brings it up to date with the migrations shipped in
``pollwatch/appdb/migrations`` (Alembic, applied programmatically: no ``alembic.ini``). Every
capability that keeps state here declares its tables on :class:`Base` and adds its own migration
revision whose ``down_revision`` is ``"0001_appdb"``, the empty base revision; the runner
upgrades to every head, so capabilities never need to order their migrations among themselves.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, create_engine, event, inspect
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from pollwatch.errors import DatabaseError
from pollwatch.settings import Settings

__all__ = [
    "MIGRATIONS",
    "Base",
    "Database",
    "open_database",
]

#: The folder of the shipped Alembic migrations.
MIGRATIONS = Path(__file__).with_name("migrations")

#: Constraint names that are the same on SQLite and PostgreSQL (Alembic needs named constraints).
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """The declarative base of every application table."""

    metadata = MetaData(naming_convention=NAMING)


class Database:
    """An open application database: an engine and a factory of transactional sessions."""

    def __init__(self, url: str, engine: Engine) -> None:
        self.url = url
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        with self._sessions() as session, session.begin():
            yield session

    def revisions(self) -> set[str]:
        """The migration revisions the database is at (one per head)."""
        with self.engine.connect() as connection:
            if not inspect(connection).has_table("alembic_version"):
                return set()
            rows = connection.exec_driver_sql("SELECT version_num FROM alembic_version")
            return {str(row[0]) for row in rows}

    def close(self) -> None:
        """Release the connection pool."""
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"Database({self.engine.url.render_as_string(hide_password=True)!r})"


_migrate_lock = threading.Lock()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def _engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError as error:
        raise DatabaseError(
            f"database URL {url!r} is not valid: {error}",
            hint="set database_url to e.g. sqlite:///path/app.db",
        ) from None
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            path = Path(database)
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                path.touch(mode=0o600)
        engine = create_engine(parsed)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    try:
        return create_engine(parsed, pool_pre_ping=True)
    except (ArgumentError, ImportError, SQLAlchemyError) as error:
        raise DatabaseError(
            f"cannot use database {parsed.render_as_string(hide_password=True)}: {error}",
            hint="install the driver the URL names, or fix database_url",
        ) from None


def _upgrade(engine: Engine) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with _migrate_lock, engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "heads")


def open_database(where: Settings | str, *, migrate: bool = True) -> Database:
    """Open the application database and bring its schema up to the shipped migrations.

    ``where`` is the settings (their :attr:`~pollwatch.settings.Settings.app_database_url`) or a
    SQLAlchemy URL. Raises :class:`~pollwatch.errors.DatabaseError` naming the database when it
    cannot be reached or migrated.
    """
    url = where.app_database_url if isinstance(where, Settings) else where
    engine = _engine(url)
    if migrate:
        try:
            _upgrade(engine)
        except SQLAlchemyError as error:
            engine.dispose()
            place = make_url(url).render_as_string(hide_password=True)
            raise DatabaseError(
                f"cannot migrate database {place}: {str(error).splitlines()[0]}",
                hint="check the URL and that the database is reachable and writable",
            ) from None
    if os.name == "posix" and engine.url.get_backend_name() == "sqlite" and engine.url.database:
        path = Path(engine.url.database)
        if path.exists():
            path.chmod(0o600)
    return Database(url, engine)
